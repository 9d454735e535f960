package admin

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestApplyMask(t *testing.T) {
	stored := &adminv1.AccessProfile{
		Id: "prf_1", ClientId: "cli_1", Name: "old", IpAllow: []string{"10.0.0.0/8"}, Etag: "4",
		Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
			Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://a.example/jwks"}, Issuers: []string{"a"}, Audiences: []string{"x"},
		}},
	}
	tests := []struct {
		name string
		req  *adminv1.AccessProfile
		mask []string
		want *adminv1.AccessProfile
	}{
		{
			name: "a named field absent from the request is cleared",
			req:  &adminv1.AccessProfile{Name: "new"},
			mask: []string{"name", "ip_allow"},
			want: &adminv1.AccessProfile{Id: "prf_1", ClientId: "cli_1", Name: "new", Etag: "4", Auth: stored.Auth},
		},
		{
			name: "a nested path keeps its siblings",
			req:  &adminv1.AccessProfile{Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{Issuers: []string{"b", "c"}}}},
			mask: []string{"jwt.issuers"},
			want: &adminv1.AccessProfile{Id: "prf_1", ClientId: "cli_1", Name: "old", IpAllow: []string{"10.0.0.0/8"}, Etag: "4",
				Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
					Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://a.example/jwks"}, Issuers: []string{"b", "c"}, Audiences: []string{"x"},
				}}},
		},
		{
			name: "a oneof member replaces the other",
			req:  &adminv1.AccessProfile{Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}},
			mask: []string{"api_token"},
			want: &adminv1.AccessProfile{Id: "prf_1", ClientId: "cli_1", Name: "old", IpAllow: []string{"10.0.0.0/8"}, Etag: "4",
				Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}},
		},
		{
			name: "an empty mask takes the fields the request sets, but never its keys",
			req:  &adminv1.AccessProfile{Id: "prf_other", ClientId: "cli_other", Etag: "1", IpDeny: []string{"192.0.2.0/24"}},
			want: &adminv1.AccessProfile{Id: "prf_1", ClientId: "cli_1", Name: "old", IpAllow: []string{"10.0.0.0/8"}, Etag: "4",
				IpDeny: []string{"192.0.2.0/24"}, Auth: stored.Auth},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mask *fieldmaskpb.FieldMask
			if tc.mask != nil {
				mask = &fieldmaskpb.FieldMask{Paths: tc.mask}
			}
			paths, err := updatePaths(tc.req, mask, profileMask)
			if err != nil {
				t.Fatal(err)
			}
			got := proto.Clone(stored).(*adminv1.AccessProfile)
			applyPaths(got, tc.req, paths)
			diff(t, tc.want, got, protocmp.Transform())
		})
	}
}

func TestSnakeField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Name", "name"},
		{"CollectionIds[12]", "collection_ids[12]"},
		{"HmacSecretSha256", "hmac_secret_sha256"},
		{"IpAllow[0]", "ip_allow[0]"},
		{"Pem[3]", "pem[3]"},
	}
	for _, tc := range tests {
		if got := snakeField(tc.in); got != tc.want {
			t.Errorf("snakeField(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
