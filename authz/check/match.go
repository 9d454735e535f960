package check

import (
	"errors"
	"fmt"
	"strings"
)

// ParamHeaderPrefix starts the upstream header of each path parameter.
const ParamHeaderPrefix = "x-gatehouse-param-"

// node is one level of the route trie: a path segment. Literal children are tried before the
// parameter child, and matching backtracks, so "/a/{x}" and "/a/b/c" both resolve.
type node struct {
	lit   map[string]*node
	param *node
	// ends holds the endpoints whose template ends here, by method.
	ends map[string]*Endpoint
}

// parseTemplate splits "/orders/{id}" into segments. Parameter names are letters, digits,
// '_' and '-', unique within the template, and take a whole segment.
func parseTemplate(t string) ([]segment, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("path template %q must start with /", t)
	}
	if strings.ContainsAny(t, "?#") {
		return nil, fmt.Errorf("path template %q must not contain a query or fragment", t)
	}
	parts := strings.Split(t[1:], "/")
	segs := make([]segment, len(parts))
	seen := map[string]bool{}
	for i, p := range parts {
		if !strings.HasPrefix(p, "{") {
			if strings.ContainsAny(p, "{}") {
				return nil, fmt.Errorf("path template %q: segment %q mixes text and a parameter", t, p)
			}
			segs[i] = segment{lit: p}
			continue
		}
		name, ok := strings.CutSuffix(p[1:], "}")
		if !ok || !validParamName(name) {
			return nil, fmt.Errorf("path template %q: bad parameter segment %q", t, p)
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return nil, fmt.Errorf("path template %q: parameter %q appears twice", t, name)
		}
		seen[lower] = true
		segs[i] = segment{header: ParamHeaderPrefix + lower}
	}
	return segs, nil
}

func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// insert adds ep under its template and method. Two endpoints with the same method and the
// same template shape (parameter names aside) would make a match ambiguous: refused.
func (n *node) insert(ep *Endpoint) error {
	cur := n
	for _, s := range ep.segs {
		if s.header != "" {
			if cur.param == nil {
				cur.param = &node{}
			}
			cur = cur.param
			continue
		}
		if cur.lit == nil {
			cur.lit = map[string]*node{}
		}
		next := cur.lit[s.lit]
		if next == nil {
			next = &node{}
			cur.lit[s.lit] = next
		}
		cur = next
	}
	if cur.ends == nil {
		cur.ends = map[string]*Endpoint{}
	}
	if other, dup := cur.ends[ep.Method]; dup {
		return fmt.Errorf("%s %s overlaps endpoint %q (%s)", ep.Method, ep.Template, other.ID, other.Template)
	}
	cur.ends[ep.Method] = ep
	return nil
}

// find returns the endpoint for method and path (which starts with '/' and has no query),
// or nil. It does not allocate.
func (n *node) find(method, path string) *Endpoint {
	if path == "" {
		return n.ends[method]
	}
	if path[0] != '/' {
		return nil
	}
	p := path[1:]
	i := strings.IndexByte(p, '/')
	if i < 0 {
		i = len(p)
	}
	seg, rest := p[:i], p[i:]
	if c := n.lit[seg]; c != nil {
		if ep := c.find(method, rest); ep != nil {
			return ep
		}
	}
	if seg != "" && n.param != nil {
		return n.param.find(method, rest)
	}
	return nil
}

// errNoMatch is returned by params when the path does not fit the endpoint's template.
var errNoMatch = errors.New("path does not match the endpoint template")

// params appends the endpoint's path parameters found in path to dst. It fails when the path
// does not fit the template.
func (e *Endpoint) params(path string, dst []Param) ([]Param, error) {
	for _, s := range e.segs {
		if path == "" || path[0] != '/' {
			return dst, errNoMatch
		}
		p := path[1:]
		i := strings.IndexByte(p, '/')
		if i < 0 {
			i = len(p)
		}
		seg := p[:i]
		path = p[i:]
		if s.header == "" {
			if seg != s.lit {
				return dst, errNoMatch
			}
			continue
		}
		if seg == "" {
			return dst, errNoMatch
		}
		dst = append(dst, Param{Header: s.header, Value: seg})
	}
	if path != "" {
		return dst, errNoMatch
	}
	return dst, nil
}

// Param is one path parameter as the upstream receives it: the header name and the segment
// as matched (not percent-decoded).
type Param struct {
	Header string
	Value  string
}
