package admin

import (
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		want    template
		wantErr string
	}{
		{name: "root", path: "/", want: template{}},
		{name: "literal", path: "/invoices", want: template{{literal: "invoices"}}},
		{name: "param", path: "/invoices/{id}", want: template{{literal: "invoices"}, {param: "id"}}},
		{name: "sub-delims and colon", path: "/a:b/x@y/it's", want: template{{literal: "a:b"}, {literal: "x@y"}, {literal: "it's"}}},
		{name: "two params", path: "/{a}/{b_2}", want: template{{param: "a"}, {param: "b_2"}}},
		{name: "empty", path: "", wantErr: "must not be empty"},
		{name: "relative", path: "invoices", wantErr: `must start with "/"`},
		{name: "trailing slash", path: "/invoices/", wantErr: "segment 2 is empty"},
		{name: "double slash", path: "//x", wantErr: "segment 1 is empty"},
		{name: "repeated param", path: "/{id}/x/{id}", wantErr: "parameter {id} appears more than once"},
		{name: "param repeated in another case", path: "/x/{id}/{ID}", wantErr: "parameter {ID} appears more than once"},
		{name: "dot segment", path: "/a/./b", wantErr: `segment 2 ".": dot segments`},
		{name: "dot-dot segment", path: "/a/..", wantErr: `segment 2 "..": dot segments`},
		{name: "dots inside a literal", path: "/a.b/...", want: template{{literal: "a.b"}, {literal: "..."}}},
		{name: "param starting with digit", path: "/{1a}", wantErr: "a parameter is {name}"},
		{name: "half a param", path: "/{id", wantErr: "a parameter is {name}"},
		{name: "empty param", path: "/{}", wantErr: "a parameter is {name}"},
		{name: "percent escape", path: "/a%20b", wantErr: `character '%' is not allowed`},
		{name: "query", path: "/a?b", wantErr: `character '?' is not allowed`},
		{name: "too long", path: "/" + strings.Repeat("a", 512), wantErr: "at most 512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTemplate(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseTemplate(%q) error = %v, want %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTemplate(%q): %v", tc.path, err)
			}
			diff(t, tc.want, got, cmpSegments)
			if got.String() != tc.path {
				t.Errorf("String() = %q, want %q", got.String(), tc.path)
			}
		})
	}
}

func TestTemplateClash(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "same literal", a: "/invoices", b: "/invoices", want: true},
		{name: "different literal", a: "/invoices", b: "/orders", want: false},
		{name: "param against literal", a: "/invoices/{id}", b: "/invoices/latest", want: true},
		{name: "params with other names", a: "/invoices/{id}", b: "/invoices/{number}", want: true},
		{name: "params in different places", a: "/{a}/x", b: "/y/{b}", want: true},
		{name: "different lengths", a: "/invoices/{id}", b: "/invoices", want: false},
		{name: "root and root", a: "/", b: "/", want: true},
		{name: "root and param", a: "/", b: "/{id}", want: false},
		{name: "literal mismatch after param", a: "/{a}/x", b: "/{b}/y", want: false},
		{name: "case matters", a: "/Invoices", b: "/invoices", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseTemplate(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := parseTemplate(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.clashes(b); got != tc.want {
				t.Errorf("%s clashes %s = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if got := b.clashes(a); got != tc.want {
				t.Errorf("%s clashes %s = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

// FuzzTemplate checks that parsing never panics, that an accepted template renders back to its
// input, clashes with itself, and that clash is symmetric.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/{b}", "/{a}/{a}", "//", "/{", "/}", "/{a}b", "/a%", "/{_}", "/x/{y}/z"} {
		f.Add(s, "/a/{b}")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, errA := parseTemplate(a)
		tb, errB := parseTemplate(b)
		if errA == nil {
			if ta.String() != a {
				t.Fatalf("parse(%q).String() = %q", a, ta.String())
			}
			if !ta.clashes(ta) {
				t.Fatalf("%q does not clash with itself", a)
			}
		}
		if errA == nil && errB == nil && ta.clashes(tb) != tb.clashes(ta) {
			t.Fatalf("clash of %q and %q is not symmetric", a, b)
		}
	})
}
