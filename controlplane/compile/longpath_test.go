package compile

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// TestPathRegexOfLongTemplates compiles the route regex of the longest templates the admin API
// accepts. RE2 (Envoy's safe_regex, grpc-go's xDS client) and Go's regexp share the syntax, so a
// regex Go cannot compile would be refused by Envoy too; the program size Envoy also checks is
// raised for these routes by the bootstrap's runtime (see the package doc).
func TestPathRegexOfLongTemplates(t *testing.T) {
	tests := []struct {
		name       string
		collection string
		template   string
		path       string // a request path the route must match
	}{
		{
			name:       "eight parameters in about 500 bytes",
			collection: "sales-api-v1",
			template:   eightParamTemplate(),
			path:       strings.NewReplacer("{", "", "}", "").Replace(eightParamTemplate()),
		},
		{
			name:       "128 parameters, the most a 512-byte template holds",
			collection: strings.Repeat("a", 63),
			template:   strings.Repeat("/{a}", 128),
			path:       strings.Repeat("/x", 128),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The template is one the admin API accepts, so this route can exist.
			col := &adminv1.Collection{Id: "col", Name: "c", Version: "v1", Path: tc.collection}
			ep := &adminv1.Endpoint{Id: "ep", CollectionId: "col", Name: "e", Method: "GET",
				Path: tc.template, RecipeId: "rcp", Active: proto.Bool(true)}
			if err := col.ValidateAll(); err != nil {
				t.Fatalf("collection: %v", err)
			}
			if err := ep.ValidateAll(); err != nil {
				t.Fatalf("endpoint: %v", err)
			}
			re := pathRegex(strings.Split(tc.collection+tc.template, "/"))
			parsed, err := syntax.Parse(re, syntax.Perl)
			if err != nil {
				t.Fatalf("parse %q: %v", re, err)
			}
			if _, err := syntax.Compile(parsed.Simplify()); err != nil {
				t.Fatalf("compile %q: %v", re, err)
			}
			if !regexp.MustCompile(re).MatchString("/" + tc.collection + tc.path) {
				t.Errorf("%q does not match %q", re, "/"+tc.collection+tc.path)
			}
			if regexp.MustCompile(re).MatchString("/" + tc.collection + tc.path + "/extra") {
				t.Errorf("%q matches a longer path", re)
			}
		})
	}
}

// eightParamTemplate is an eight-parameter template of about 500 bytes.
func eightParamTemplate() string {
	var b strings.Builder
	for i := range 8 {
		b.WriteString("/" + strings.Repeat(string(rune('a'+i)), 40) + "-segment/{parameter_" + string(rune('a'+i)) + "}")
	}
	return b.String()
}
