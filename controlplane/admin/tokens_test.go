package admin

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// expire_time reaches the sidecars as is, and one they cannot read makes them refuse the whole
// profile, so the admin API accepts only valid times in the next ten years.
func TestCreateTokenExpireTime(t *testing.T) {
	e := newEnv(t)
	f := e.fixture("sales")
	now := e.clock.now()
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	tests := []struct {
		name string
		exp  *timestamppb.Timestamp
		ok   bool
	}{
		{"none", nil, true},
		{"in an hour", at(time.Hour), true},
		{"just under ten years", at(maxTokenLifetime - time.Second), true},
		{"now", at(0), false},
		{"in the past", at(-time.Second), false},
		{"ten years", at(maxTokenLifetime), false},
		{"year 2999", timestamppb.New(time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)), false},
		{"negative nanos", &timestamppb.Timestamp{Seconds: now.Unix() + 3600, Nanos: -1}, false},
		{"nanos over a second", &timestamppb.Timestamp{Seconds: now.Unix() + 3600, Nanos: 1_000_000_000}, false},
		{"seconds past year 9999", &timestamppb.Timestamp{Seconds: 253402300800}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev := e.store.Revision()
			got, err := e.toks.CreateToken(e.ctx(), &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Name: "t", ExpireTime: tc.exp})
			if tc.ok {
				if err != nil {
					t.Fatalf("CreateToken: %v", err)
				}
				diff(t, tc.exp.AsTime(), got.GetToken().GetExpireTime().AsTime())
				return
			}
			wantCode(t, err, codes.InvalidArgument)
			diff(t, []string{"expire_time"}, violationFields(err))
			if e.store.Revision() != rev {
				t.Error("a refused request wrote")
			}
		})
	}
}
