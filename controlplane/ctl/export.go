package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Export renders the state as an apply file: names instead of ids, sorted by name, no server-set
// fields, no tokens and no secrets. A JWT HMAC secret becomes an hmac_secret_env placeholder
// with a comment naming the hash of the secret it must hold.
func Export(s *State) ([]byte, error) {
	colNames, polNames := idNames(s.Collections), idNames(s.Policies)
	root := mapping()
	if len(s.Policies) > 0 {
		seq := sequence()
		for _, p := range byName(s.Policies) {
			seq.Content = append(seq.Content, messageNode(p, denyCommon))
		}
		addPair(root, "policies", seq)
	}
	if len(s.Collections) > 0 {
		seq := sequence()
		for _, c := range byName(s.Collections) {
			n := messageNode(c, denyCommon)
			if eps := s.Endpoints[c.GetId()]; len(eps) > 0 {
				es := sequence()
				for _, e := range byName(eps) {
					es.Content = append(es.Content, messageNode(e, denyEndpoint))
				}
				addPair(n, "endpoints", es)
			}
			seq.Content = append(seq.Content, n)
		}
		addPair(root, "collections", seq)
	}
	if len(s.Clients) > 0 {
		seq := sequence()
		for _, c := range byName(s.Clients) {
			n := messageNode(c, denyCommon)
			if ps := s.Profiles[c.GetId()]; len(ps) > 0 {
				pseq := sequence()
				for _, p := range byName(ps) {
					pn, err := profileNode(c, p, colNames, polNames)
					if err != nil {
						return nil, err
					}
					pseq.Content = append(pseq.Content, pn)
				}
				addPair(n, "access_profiles", pseq)
			}
			seq.Content = append(seq.Content, n)
		}
		addPair(root, "clients", seq)
	}
	var buf bytes.Buffer
	if len(root.Content) == 0 {
		return []byte("{}\n"), nil
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode export: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode export: %w", err)
	}
	return buf.Bytes(), nil
}

// profileNode renders a profile with its references as names and its auth under "auth".
func profileNode(c *adminv1.Client, p *adminv1.AccessProfile, cols, pols map[string]string) (*yaml.Node, error) {
	n := mapping()
	addPair(n, "name", scalar("!!str", p.GetName()))
	if len(p.GetCollectionIds()) > 0 {
		var names []string
		for _, id := range p.GetCollectionIds() {
			name, ok := cols[id]
			if !ok {
				return nil, fmt.Errorf("access profile %q of client %q names unknown collection %s", p.GetName(), c.GetName(), id)
			}
			names = append(names, name)
		}
		slices.Sort(names)
		seq := flowSequence()
		for _, name := range names {
			seq.Content = append(seq.Content, scalar("!!str", name))
		}
		addPair(n, "collections", seq)
	}
	auth := mapping()
	switch a := p.GetAuth().(type) {
	case *adminv1.AccessProfile_ApiToken:
		an := messageNode(a.ApiToken, nil)
		an.Style = yaml.FlowStyle
		addPair(auth, "api_token", an)
	case *adminv1.AccessProfile_Jwt:
		// Defaults are left out so the file means the same on another control plane: the
		// default claim value is the profile's id, which differs there.
		j := clone(a.Jwt)
		if j.GetClaim() == "sub" {
			j.Claim = ""
		}
		if j.GetClaimValue() == p.GetId() {
			j.ClaimValue = ""
		}
		jn := messageNode(j, []string{"hmac_secret", "hmac_secret_sha256"})
		if sum := j.GetHmacSecretSha256(); sum != "" && j.GetKey() == nil {
			k := scalar("!!str", "hmac_secret_env")
			v := scalar("!!str", secretEnvName(c.GetName(), p.GetName()))
			k.HeadComment = "set this variable to the HMAC secret whose SHA-256 is " + sum
			jn.Content = append([]*yaml.Node{k, v}, jn.Content...)
		}
		addPair(auth, "jwt", jn)
	}
	addPair(n, "auth", auth)
	if id := p.GetPolicyId(); id != "" {
		name, ok := pols[id]
		if !ok {
			return nil, fmt.Errorf("access profile %q of client %q names unknown policy %s", p.GetName(), c.GetName(), id)
		}
		addPair(n, "policy", scalar("!!str", name))
	}
	rest := messageNode(p, append([]string{"name", "collection_ids", "policy_id", "api_token", "jwt", "client_id"}, denyCommon...))
	n.Content = append(n.Content, rest.Content...)
	return n, nil
}

// secretEnvName derives a variable name from the client and profile names, e.g.
// GATEHOUSE_HMAC_ACME_ACME_PROD.
func secretEnvName(client, profile string) string {
	var b strings.Builder
	b.WriteString("GATEHOUSE_HMAC")
	for _, part := range []string{client, profile} {
		b.WriteByte('_')
		for _, r := range strings.ToUpper(part) {
			if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

// messageNode renders the set fields of m in declaration order, skipping those in skip, with
// the proto field names an apply file uses.
func messageNode(m proto.Message, skip []string) *yaml.Node {
	n := mapping()
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if slices.Contains(skip, string(fd.Name())) || !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		var vn *yaml.Node
		if fd.IsMap() {
			vn = mapNode(fd, v.Map())
		} else if fd.IsList() {
			vn = flowSequence()
			l := v.List()
			for j := range l.Len() {
				vn.Content = append(vn.Content, valueNode(fd, l.Get(j)))
			}
			if fd.Message() != nil || hasLongItem(vn) {
				vn.Style = 0
			}
		} else {
			vn = valueNode(fd, v)
		}
		addPair(n, string(fd.Name()), vn)
	}
	return n
}

// mapNode renders a map field with its keys sorted, so the output is stable.
func mapNode(fd protoreflect.FieldDescriptor, m protoreflect.Map) *yaml.Node {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
	n := mapping()
	for _, k := range keys {
		addPair(n, k.String(), valueNode(fd.MapValue(), m.Get(k)))
	}
	return n
}

func hasLongItem(seq *yaml.Node) bool {
	for _, c := range seq.Content {
		if len(c.Value) > 60 || strings.Contains(c.Value, "\n") {
			return true
		}
	}
	return false
}

func valueNode(fd protoreflect.FieldDescriptor, v protoreflect.Value) *yaml.Node {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind,
		protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10))
	case protoreflect.StringKind:
		s := scalar("!!str", v.String())
		if strings.Contains(v.String(), "\n") {
			s.Style = yaml.LiteralStyle
		}
		return s
	case protoreflect.EnumKind:
		return scalar("!!str", string(fd.Enum().Values().ByNumber(v.Enum()).Name()))
	case protoreflect.MessageKind:
		m := v.Message().Interface()
		if strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			// Well-known types (durations, timestamps) use their JSON form, e.g. "30s".
			js, err := protojson.Marshal(m)
			var s string
			if err == nil && json.Unmarshal(js, &s) == nil {
				return scalar("!!str", s)
			}
		}
		n := messageNode(m, nil)
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n
	}
	return scalar("!!str", v.String())
}

func mapping() *yaml.Node  { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }
func sequence() *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"} }
func flowSequence() *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
}
func scalar(tag, v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }
func addPair(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, scalar("!!str", k), v)
}
