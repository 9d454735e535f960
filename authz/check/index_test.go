package check

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/check/checktest"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func TestBuildRefusesBadConfig(t *testing.T) {
	base := checktest.New(time.Now()).Config
	tests := []struct {
		name    string
		mutate  func(c *authzv1.Config)
		wantErr string
	}{
		{"missing policy", func(c *authzv1.Config) { c.Profiles[0].PolicyId = "nope" }, `policy "nope" does not exist`},
		{"bad CIDR", func(c *authzv1.Config) { c.Profiles[0].IpAllow = []string{"10.0.0.0/33"} }, "ip_allow"},
		{"bad address", func(c *authzv1.Config) { c.Profiles[0].IpDeny = []string{"example.com"} }, "ip_deny"},
		{"overlapping route", func(c *authzv1.Config) {
			e := proto.Clone(c.Endpoints[0]).(*authzv1.Endpoint)
			e.Name, e.PathTemplate = "ep-dup", "/sales/orders/{other}"
			c.Endpoints = append(c.Endpoints, e)
		}, "overlaps endpoint"},
		{"duplicate endpoint id", func(c *authzv1.Config) { c.Endpoints = append(c.Endpoints, c.Endpoints[0]) }, "duplicate id"},
		{"template without slash", func(c *authzv1.Config) { c.Endpoints[0].PathTemplate = "sales" }, "must start with /"},
		{"parameter mixed with text", func(c *authzv1.Config) { c.Endpoints[0].PathTemplate = "/sales/o{id}" }, "mixes text"},
		{"parameter twice", func(c *authzv1.Config) { c.Endpoints[0].PathTemplate = "/sales/{id}/{ID}" }, "appears twice"},
		{"lower-case method", func(c *authzv1.Config) { c.Endpoints[0].Method = "get" }, "upper-case"},
		{"short hash", func(c *authzv1.Config) {
			c.Profiles[0].GetApiToken().Tokens[0].SecretSha256 = []byte{1, 2, 3}
		}, "has 3 bytes"},
		{"shared secret", func(c *authzv1.Config) {
			c.Profiles[1].GetApiToken().Tokens[0].SecretSha256 = c.Profiles[0].GetApiToken().Tokens[0].SecretSha256
		}, "belongs to another token"},
		{"no credential kind", func(c *authzv1.Config) { c.Profiles[0].Auth = nil }, "no credential kind"},
		{"rate without period", func(c *authzv1.Config) { c.Policies[0].RateLimit.Period = nil }, "rate limit needs"},
		{"quota without window", func(c *authzv1.Config) { c.Policies[1].Quota.Window = 0 }, "quota needs"},
		{"duplicate profile", func(c *authzv1.Config) { c.Profiles = append(c.Profiles, c.Profiles[0]) }, "duplicate id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := proto.Clone(base).(*authzv1.Config)
			tt.mutate(c)
			_, err := Build(c)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Build() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := Build(nil); err == nil {
		t.Error("Build(nil) succeeded")
	}
	if _, err := Build(base); err != nil {
		t.Fatalf("Build(fixture) = %v", err)
	}
}

func TestMatch(t *testing.T) {
	x, err := Build(checktest.New(time.Now()).Config)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		wantID             string
		wantParams         []Param
	}{
		{"literal", "GET", "/sales/orders", checktest.EndpointListOrders, nil},
		{"parameter", "GET", "/sales/orders/o-17", checktest.EndpointGetOrder,
			[]Param{{"x-gatehouse-param-id", "o-17"}}},
		{"literal beats parameter", "GET", "/sales/orders/summary", checktest.EndpointSummary, nil},
		{"two parameters with backtracking past a literal", "GET", "/sales/orders/summary/items/9", checktest.EndpointItem,
			[]Param{{"x-gatehouse-param-id", "summary"}, {"x-gatehouse-param-item", "9"}}},
		{"raw value kept", "GET", "/sales/orders/a%2Fb", checktest.EndpointGetOrder,
			[]Param{{"x-gatehouse-param-id", "a%2Fb"}}},
		{"method selects", "POST", "/sales/orders", checktest.EndpointCreate, nil},
		{"unknown method", "DELETE", "/sales/orders", "", nil},
		{"empty parameter", "GET", "/sales/orders//items/1", "", nil},
		{"trailing slash", "GET", "/sales/orders/", "", nil},
		{"too long", "GET", "/sales/orders/1/items/2/x", "", nil},
		{"other collection", "GET", "/hr/people", checktest.EndpointPeople, nil},
		{"no leading slash", "GET", "sales/orders", "", nil},
		{"root", "GET", "/", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := x.routes.find(tt.method, tt.path)
			got := ""
			if ep != nil {
				got = ep.ID
			}
			if got != tt.wantID {
				t.Fatalf("find(%s %s) = %q, want %q", tt.method, tt.path, got, tt.wantID)
			}
			if ep == nil {
				return
			}
			params, err := ep.params(tt.path, nil)
			if err != nil {
				t.Fatalf("params: %v", err)
			}
			if diff := cmp.Diff(tt.wantParams, params); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMappedPrefixes checks that IPv4-mapped IPv6 entries in allow and deny
// lists match IPv4 callers, which clientAddr always unmaps.
func TestMappedPrefixes(t *testing.T) {
	tests := []struct {
		name  string
		allow []string
		deny  []string
		addr  string
		want  Code
	}{
		{"mapped CIDR allows", []string{"::ffff:198.51.100.0/120"}, nil, "198.51.100.7", OK},
		{"mapped CIDR refuses outside", []string{"::ffff:198.51.100.0/120"}, nil, "198.51.101.7", IPNotAllowed},
		{"mapped host CIDR allows", []string{"::ffff:198.51.100.7/128"}, nil, "198.51.100.7", OK},
		{"mapped CIDR denies", nil, []string{"::ffff:198.51.100.0/120"}, "198.51.100.7", IPNotAllowed},
		{"mapped host CIDR denies", nil, []string{"::ffff:198.51.100.7/128"}, "198.51.100.7", IPNotAllowed},
		{"mapped deny leaves others", nil, []string{"::ffff:198.51.100.7/128"}, "198.51.100.8", OK},
		{"short IPv6 prefix stays IPv6", []string{"::/64"}, nil, "198.51.100.7", IPNotAllowed},
		{"IPv6 prefix still matches IPv6", []string{"2001:db8::/32"}, nil, "2001:db8::1", OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Profile
			var err error
			if p.ipAllow, err = parsePrefixes(tt.allow); err != nil {
				t.Fatal(err)
			}
			if p.ipDeny, err = parsePrefixes(tt.deny); err != nil {
				t.Fatal(err)
			}
			if got, _ := checkIP(&p, netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("checkIP(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
