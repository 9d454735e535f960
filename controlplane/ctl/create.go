package ctl

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// createFlag maps a command-line flag to a field of the resource's YAML form.
type createFlag struct {
	flag, key, help    string
	list, boolean, jwt bool
}

// createFlags are the flags of `create <kind>`; each becomes the field key in the same YAML an
// apply file uses, so flags and files are decoded and validated the same way.
var createFlags = map[string][]createFlag{
	kCollections: {
		{flag: "name", key: "name", help: "collection name"},
		{flag: "version", key: "version", help: "version label, e.g. v1"},
		{flag: "path", key: "path", help: "URL segment, e.g. sales-api-v1"},
		{flag: "description", key: "description", help: "free text"},
	},
	kEndpoints: {
		{flag: "name", key: "name", help: "endpoint name"},
		{flag: "method", key: "method", help: "GET, POST, PUT, PATCH or DELETE"},
		{flag: "path", key: "path", help: "path template, e.g. /invoices/{id}"},
		{flag: "recipe-id", key: "recipe_id", help: "recipe that serves the endpoint"},
		{flag: "active", key: "active", help: "make the endpoint callable", boolean: true},
		{flag: "timeout", key: "timeout", help: "call timeout, e.g. 30s"},
		{flag: "description", key: "description", help: "free text"},
	},
	kClients: {
		{flag: "name", key: "name", help: "client name"},
		{flag: "email", key: "email", help: "contact address"},
		{flag: "description", key: "description", help: "free text"},
	},
	kPolicies: {
		{flag: "name", key: "name", help: "policy name"},
		{flag: "description", key: "description", help: "free text"},
	},
	kProfiles: {
		{flag: "name", key: "name", help: "profile name"},
		{flag: "collections", key: "collections", help: "comma-separated collection names", list: true},
		{flag: "policy", key: "policy", help: "access policy name"},
		{flag: "ip-allow", key: "ip_allow", help: "comma-separated CIDRs callers must come from", list: true},
		{flag: "ip-deny", key: "ip_deny", help: "comma-separated CIDRs refused", list: true},
	},
}

// jwtFlags are the JWT settings of `create profile --auth jwt`.
var jwtFlags = []createFlag{
	{flag: "jwks-url", key: "jwks_url", jwt: true, help: "JWKS URL"},
	{flag: "oidc-issuer", key: "oidc_issuer", jwt: true, help: "OpenID Connect issuer"},
	{flag: "hmac-secret-env", key: "hmac_secret_env", jwt: true, help: "environment variable holding the HMAC secret"},
	{flag: "hmac-secret-file", key: "hmac_secret_file", jwt: true, help: "file holding the HMAC secret"},
	{flag: "claim", key: "claim", jwt: true, help: "claim naming the profile (default sub)"},
	{flag: "claim-value", key: "claim_value", jwt: true, help: "value of the claim (default the profile id)"},
	{flag: "issuers", key: "issuers", jwt: true, help: "comma-separated accepted issuers", list: true},
	{flag: "audiences", key: "audiences", jwt: true, help: "comma-separated accepted audiences", list: true},
}

// create creates one resource from a file (`-f FILE`, the YAML form of one item of an apply
// file) or from flags.
func (c *cli) create(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("create: want a kind")
	}
	kind, err := kindOf(args[0])
	if err != nil {
		return err
	}
	table, ok := createFlags[kind]
	if !ok {
		return usagef("create: cannot create %s (tokens: use 'tokens create')", kind)
	}
	fs := c.flags("create " + kind)
	file := fs.String("f", "", "YAML file with the resource, - for standard input")
	var p parents
	fs.StringVar(&p.collection, "collection", "", "endpoints: collection id or name")
	fs.StringVar(&p.client, "client", "", "profiles: client id or name")
	values := map[string]*string{}
	bools := map[string]*bool{}
	all := table
	switch kind {
	case kPolicies:
		values["rate"] = fs.String("rate", "", "rate limit, e.g. 100/minute")
		values["burst"] = fs.String("burst", "", "rate limit burst")
		values["quota"] = fs.String("quota", "", "quota, e.g. 10000/month")
	case kProfiles:
		values["auth"] = fs.String("auth", "api_token", "credential: api_token or jwt")
		all = append(append([]createFlag(nil), table...), jwtFlags...)
	}
	for _, f := range all {
		if f.boolean {
			bools[f.key] = fs.Bool(f.flag, false, f.help)
		} else {
			values[f.key] = fs.String(f.flag, "", f.help)
		}
	}
	if _, err := c.parse(fs, args[1:], 0, 0); err != nil {
		return err
	}
	if err := p.check(kind); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var node *yaml.Node
	if *file != "" {
		data, err := c.readInput(*file)
		if err != nil {
			return err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: parse: %w", *file, err)
		}
		if len(doc.Content) == 0 {
			return fmt.Errorf("%s: empty file", *file)
		}
		node = doc.Content[0]
	} else if node, err = flagsNode(kind, all, set, values, bools); err != nil {
		return err
	}

	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	plan, err := c.createPlan(ctx, a, kind, node, p)
	if err != nil {
		return err
	}
	st := &State{}
	if st.Policies, err = a.listPolicies(ctx); err != nil {
		return err
	}
	if st.Collections, err = a.listCollections(ctx); err != nil {
		return err
	}
	if st.Clients, err = a.listClients(ctx); err != nil {
		return err
	}
	r := newRefs(st)
	for _, act := range plan {
		if err := a.run(ctx, act, r); err != nil {
			return wrap(err, fmt.Sprintf("create %s %q", act.Kind, act.Name))
		}
	}
	if len(r.created) == 0 {
		return nil
	}
	return printItems(c.stdout, "table", kind, r.created[:1], true, nil)
}

// createPlan decodes one resource and turns it into creates; a collection brings its
// endpoints and a client its profiles.
func (c *cli) createPlan(ctx context.Context, a *api, kind string, n *yaml.Node, p parents) (Plan, error) {
	d := c.decoder()
	switch kind {
	case kCollections:
		cs, err := d.decodeCollection(n)
		if err != nil {
			return nil, err
		}
		plan := Plan{{Op: OpCreate, Kind: KindCollection, Name: cs.Collection.GetName(), desired: cs.Collection}}
		for _, e := range cs.Endpoints {
			plan = append(plan, Action{Op: OpCreate, Kind: KindEndpoint, Parent: cs.Collection.GetName(), Name: e.GetName(), desired: e})
		}
		return plan, nil
	case kEndpoints:
		col, err := a.collection(ctx, p.collection)
		if err != nil {
			return nil, err
		}
		e := &adminv1.Endpoint{}
		if _, err := decodeObject(n, label(n, "endpoint", ""), e, nil, denyEndpoint); err != nil {
			return nil, err
		}
		return Plan{{Op: OpCreate, Kind: KindEndpoint, Parent: col.GetName(), Name: e.GetName(), desired: e}}, nil
	case kClients:
		cs, err := d.decodeClient(n)
		if err != nil {
			return nil, err
		}
		plan := Plan{{Op: OpCreate, Kind: KindClient, Name: cs.Client.GetName(), desired: cs.Client}}
		for _, ps := range cs.Profiles {
			plan = append(plan, Action{Op: OpCreate, Kind: KindProfile, Parent: cs.Client.GetName(), Name: ps.Profile.GetName(), desired: ps.Profile, profile: ps})
		}
		return plan, nil
	case kProfiles:
		cl, err := a.client(ctx, p.client)
		if err != nil {
			return nil, err
		}
		ps, err := d.decodeProfile(n, cl.GetName())
		if err != nil {
			return nil, err
		}
		return Plan{{Op: OpCreate, Kind: KindProfile, Parent: cl.GetName(), Name: ps.Profile.GetName(), desired: ps.Profile, profile: ps}}, nil
	case kPolicies:
		pol := &adminv1.AccessPolicy{}
		if _, err := decodeObject(n, label(n, "policy", ""), pol, nil, denyCommon); err != nil {
			return nil, err
		}
		return Plan{{Op: OpCreate, Kind: KindPolicy, Name: pol.GetName(), desired: proto.Message(pol)}}, nil
	}
	return nil, usagef("create: cannot create %s", kind)
}

// flagsNode builds the YAML form of a resource from create's flags.
func flagsNode(kind string, table []createFlag, set map[string]bool, values map[string]*string, bools map[string]*bool) (*yaml.Node, error) {
	m := map[string]any{}
	jwt := map[string]any{}
	for _, f := range table {
		if !set[f.flag] {
			continue
		}
		dst := m
		if f.jwt {
			dst = jwt
		}
		switch {
		case f.boolean:
			dst[f.key] = *bools[f.key]
		case f.list:
			dst[f.key] = splitList(*values[f.key])
		default:
			dst[f.key] = *values[f.key]
		}
	}
	switch kind {
	case kPolicies:
		if v := *values["rate"]; v != "" {
			n, per, err := perValue(v)
			if err != nil {
				return nil, usagef("create: --rate: %v", err)
			}
			rl := map[string]any{"requests": n, "per": per}
			if b := *values["burst"]; b != "" {
				bn, err := strconv.ParseUint(b, 10, 32)
				if err != nil {
					return nil, usagef("create: --burst: %v", err)
				}
				rl["burst"] = bn
			}
			m["rate_limit"] = rl
		}
		if v := *values["quota"]; v != "" {
			n, per, err := perValue(v)
			if err != nil {
				return nil, usagef("create: --quota: %v", err)
			}
			m["quota"] = map[string]any{"requests": n, "per": per}
		}
	case kProfiles:
		switch *values["auth"] {
		case "api_token", "api-token":
			if len(jwt) > 0 {
				return nil, usagef("create: JWT flags need --auth jwt")
			}
			m["auth"] = map[string]any{"api_token": map[string]any{}}
		case "jwt":
			m["auth"] = map[string]any{"jwt": jwt}
		default:
			return nil, usagef("create: --auth must be api_token or jwt")
		}
	}
	var n yaml.Node
	if err := n.Encode(m); err != nil {
		return nil, fmt.Errorf("encode flags: %w", err)
	}
	return &n, nil
}

// perValue parses "100/minute".
func perValue(s string) (uint64, string, error) {
	num, per, ok := strings.Cut(s, "/")
	if !ok {
		return 0, "", fmt.Errorf("%q: want REQUESTS/PERIOD, e.g. 100/minute", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%q: %w", s, err)
	}
	return n, per, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
