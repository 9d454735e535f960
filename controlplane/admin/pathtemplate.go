package admin

import (
	"errors"
	"fmt"
	"strings"
)

// segment is one part of an endpoint path template: a literal or a {name} parameter.
type segment struct {
	literal string
	param   string // set for {name} segments; literal is then empty
}

// template is a parsed endpoint path template such as /invoices/{id}.
type template []segment

// maxTemplateLen matches the longest path the Endpoint message accepts.
const maxTemplateLen = 512

// parseTemplate parses an endpoint path template: "/" alone, or one or more "/segment" parts
// where a segment is a literal (RFC 3986 pchar without percent escapes) or a {name} parameter.
// A parameter name may appear only once, ignoring case, because the runtime receives parameters
// as x-gatehouse-param-<name> headers and header names are case-insensitive. The literal
// segments "." and ".." are refused: Envoy normalises them away, so no request could match.
func parseTemplate(path string) (template, error) {
	if path == "" {
		return nil, errors.New("must not be empty")
	}
	if len(path) > maxTemplateLen {
		return nil, fmt.Errorf("must be at most %d characters", maxTemplateLen)
	}
	if path[0] != '/' {
		return nil, errors.New(`must start with "/"`)
	}
	if path == "/" {
		return template{}, nil
	}
	parts := strings.Split(path[1:], "/")
	t := make(template, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("segment %d is empty (no \"//\" or trailing \"/\")", i+1)
		}
		if p[0] == '{' || p[len(p)-1] == '}' {
			name, ok := paramName(p)
			if !ok {
				return nil, fmt.Errorf("segment %d %q: a parameter is {name} with a letter or _ first, then letters, digits or _ (at most 64)", i+1, p)
			}
			key := strings.ToLower(name)
			if seen[key] {
				return nil, fmt.Errorf("parameter {%s} appears more than once (names are compared ignoring case)", name)
			}
			seen[key] = true
			t = append(t, segment{param: name})
			continue
		}
		if p == "." || p == ".." {
			return nil, fmt.Errorf("segment %d %q: dot segments are removed by path normalisation and can never match", i+1, p)
		}
		for j := 0; j < len(p); j++ {
			if !isPathChar(p[j]) {
				return nil, fmt.Errorf("segment %d %q: character %q is not allowed in a literal segment", i+1, p, p[j])
			}
		}
		t = append(t, segment{literal: p})
	}
	return t, nil
}

// paramName returns the name of a {name} segment.
func paramName(p string) (string, bool) {
	if len(p) < 3 || p[0] != '{' || p[len(p)-1] != '}' {
		return "", false
	}
	name := p[1 : len(p)-1]
	if len(name) > 64 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return "", false
		}
	}
	return name, true
}

// isPathChar reports whether c may appear in a literal segment: unreserved and sub-delims of
// RFC 3986, ':' and '@'. Percent escapes are refused so that one path has one spelling.
func isPathChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// clashes reports whether some concrete path matches both templates: they have the same number
// of segments and every pair of segments is two equal literals or contains a parameter.
func (t template) clashes(u template) bool {
	if len(t) != len(u) {
		return false
	}
	for i := range t {
		if t[i].param != "" || u[i].param != "" {
			continue
		}
		if t[i].literal != u[i].literal {
			return false
		}
	}
	return true
}

// String renders the template back to its path form.
func (t template) String() string {
	if len(t) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range t {
		b.WriteByte('/')
		if s.param != "" {
			b.WriteString("{" + s.param + "}")
		} else {
			b.WriteString(s.literal)
		}
	}
	return b.String()
}
