package ctl

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// tokensCmd issues, rotates and revokes API tokens:
//
//	tokens create --client X --profile Y [--name N] [--expires 720h|2027-01-01T00:00:00Z]
//	tokens rotate --client X --profile Y TOKEN_ID [--grace 24h]
//	tokens revoke --client X --profile Y TOKEN_ID
func (c *cli) tokensCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("tokens: want create, rotate or revoke")
	}
	sub := args[0]
	fs := c.flags("tokens " + sub)
	var p parents
	fs.StringVar(&p.client, "client", "", "client id or name")
	fs.StringVar(&p.profile, "profile", "", "access profile id or name")
	name := fs.String("name", "", "create: a label for the token")
	expires := fs.String("expires", "", "create: when the token ends, a duration from now (720h) or an RFC 3339 time")
	grace := fs.Duration("grace", 24*time.Hour, "rotate: how long the old token keeps working")
	quiet := fs.Bool("q", false, "create, rotate: print only the secret")
	want := map[string]int{"create": 0, "rotate": 1, "revoke": 1}
	n, ok := want[sub]
	if !ok {
		return usagef("tokens: unknown subcommand %q (want create, rotate or revoke)", sub)
	}
	pos, err := c.parse(fs, args[1:], n, n)
	if err != nil {
		return err
	}
	if err := p.check(kTokens); err != nil {
		return err
	}
	var expire *timestamppb.Timestamp
	if *expires != "" {
		t, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return usagef("tokens: --expires: %v", err)
		}
		expire = timestamppb.New(t)
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	cl, prof, err := a.profile(ctx, p.client, p.profile)
	if err != nil {
		return err
	}
	var ts *adminv1.TokenSecret
	switch sub {
	case "create":
		ts, err = a.tokens.CreateToken(ctx, &adminv1.CreateTokenRequest{
			ClientId: cl.GetId(), ProfileId: prof.GetId(), Name: *name, ExpireTime: expire,
		})
		err = wrap(err, "create token")
	case "rotate":
		ts, err = a.tokens.RotateToken(ctx, &adminv1.RotateTokenRequest{
			ClientId: cl.GetId(), ProfileId: prof.GetId(), Id: pos[0], GracePeriod: durationpb.New(*grace),
		})
		err = wrap(err, "rotate token "+pos[0])
	case "revoke":
		var t *adminv1.ApiToken
		t, err = a.tokens.RevokeToken(ctx, &adminv1.RevokeTokenRequest{ClientId: cl.GetId(), ProfileId: prof.GetId(), Id: pos[0]})
		if err != nil {
			return wrap(err, "revoke token "+pos[0])
		}
		fmt.Fprintf(c.stdout, "revoked token %s (%s…) of access profile %q of client %q\n",
			t.GetId(), t.GetDisplayPrefix(), prof.GetName(), cl.GetName())
		return nil
	}
	if err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(c.stdout, ts.GetSecret())
		return nil
	}
	t := ts.GetToken()
	verb := "created"
	if sub == "rotate" {
		verb = fmt.Sprintf("rotated %s to", pos[0])
	}
	fmt.Fprintf(c.stdout, "%s token %s for access profile %q of client %q\n", verb, t.GetId(), prof.GetName(), cl.GetName())
	if t.GetExpireTime() != nil {
		fmt.Fprintf(c.stdout, "expires: %s\n", when(t.GetExpireTime()))
	}
	fmt.Fprintf(c.stdout, "secret:  %s\n", ts.GetSecret())
	fmt.Fprintln(c.stdout, "This secret cannot be shown again: store it now.")
	return nil
}

// parseExpiry reads a duration from now or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("duration %s is not positive", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (720h) nor an RFC 3339 time", s)
	}
	return t, nil
}
