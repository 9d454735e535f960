package ctl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Spec is the desired configuration read from an apply file. References between resources are
// by name; apply resolves them to ids.
type Spec struct {
	// Policies are the access policies.
	Policies []*adminv1.AccessPolicy
	// Collections are the collections with their endpoints.
	Collections []*CollectionSpec
	// Clients are the clients with their access profiles.
	Clients []*ClientSpec
}

// CollectionSpec is a collection and its endpoints.
type CollectionSpec struct {
	Collection *adminv1.Collection
	Endpoints  []*adminv1.Endpoint
}

// ClientSpec is a client and its access profiles.
type ClientSpec struct {
	Client   *adminv1.Client
	Profiles []*ProfileSpec
}

// ProfileSpec is an access profile whose collection and policy references are names.
type ProfileSpec struct {
	// Profile has no collection_ids and no policy_id; its JWT hmac_secret is filled from
	// hmac_secret_env or hmac_secret_file.
	Profile *adminv1.AccessProfile
	// Collections names the collections the profile may call.
	Collections []string
	// Policy names the access policy; empty for none.
	Policy string
}

// Server-set fields and fields replaced by names: never accepted in a file.
var (
	denyCommon     = []string{"id", "etag", "create_time", "update_time"}
	denyEndpoint   = append([]string{"collection_id"}, denyCommon...)
	denyProfile    = append([]string{"client_id", "collection_ids", "policy_id", "api_token", "jwt"}, denyCommon...)
	denyJWT        = []string{"hmac_secret_sha256"}
	denyCollection = denyCommon
)

// decoder turns a YAML document into a Spec. getenv and readFile resolve JWT secrets given by
// reference.
type decoder struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
}

// DecodeSpec parses an apply file. Unknown fields, server-set fields and duplicate names are
// errors that name the line.
func (d decoder) DecodeSpec(data []byte) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	spec := &Spec{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return spec, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return spec, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, lineErr(root, "the document must be a mapping with policies, collections and clients")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "policies":
			err = eachItem(v, "policies", func(n *yaml.Node) error {
				p := &adminv1.AccessPolicy{}
				if _, err := decodeObject(n, label(n, "policy", ""), p, nil, denyCommon); err != nil {
					return err
				}
				spec.Policies = append(spec.Policies, p)
				return nil
			})
		case "collections":
			err = eachItem(v, "collections", func(n *yaml.Node) error {
				cs, err := d.decodeCollection(n)
				if err == nil {
					spec.Collections = append(spec.Collections, cs)
				}
				return err
			})
		case "clients":
			err = eachItem(v, "clients", func(n *yaml.Node) error {
				cs, err := d.decodeClient(n)
				if err == nil {
					spec.Clients = append(spec.Clients, cs)
				}
				return err
			})
		default:
			err = lineErr(k, "unknown field %q (want policies, collections or clients)", k.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := checkUnique(spec); err != nil {
		return nil, err
	}
	return spec, nil
}

func (d decoder) decodeCollection(n *yaml.Node) (*CollectionSpec, error) {
	c := &adminv1.Collection{}
	extra, err := decodeObject(n, label(n, "collection", ""), c, []string{"endpoints"}, denyCollection)
	if err != nil {
		return nil, err
	}
	cs := &CollectionSpec{Collection: c}
	if v := extra["endpoints"]; v != nil {
		err = eachItem(v, "endpoints", func(n *yaml.Node) error {
			e := &adminv1.Endpoint{}
			if _, err := decodeObject(n, label(n, "endpoint", fmt.Sprintf(" of collection %q", c.GetName())), e, nil, denyEndpoint); err != nil {
				return err
			}
			cs.Endpoints = append(cs.Endpoints, e)
			return nil
		})
	}
	return cs, err
}

func (d decoder) decodeClient(n *yaml.Node) (*ClientSpec, error) {
	c := &adminv1.Client{}
	extra, err := decodeObject(n, label(n, "client", ""), c, []string{"access_profiles"}, denyCommon)
	if err != nil {
		return nil, err
	}
	cs := &ClientSpec{Client: c}
	if v := extra["access_profiles"]; v != nil {
		err = eachItem(v, "access_profiles", func(n *yaml.Node) error {
			ps, err := d.decodeProfile(n, c.GetName())
			if err == nil {
				cs.Profiles = append(cs.Profiles, ps)
			}
			return err
		})
	}
	return cs, err
}

func (d decoder) decodeProfile(n *yaml.Node, client string) (*ProfileSpec, error) {
	p := &adminv1.AccessProfile{}
	what := label(n, "access profile", fmt.Sprintf(" of client %q", client))
	extra, err := decodeObject(n, what, p, []string{"collections", "policy", "auth"}, denyProfile)
	if err != nil {
		return nil, err
	}
	ps := &ProfileSpec{Profile: p}
	if v := extra["collections"]; v != nil {
		if err := v.Decode(&ps.Collections); err != nil {
			return nil, lineErr(v, "%s: collections must be a list of collection names", what)
		}
	}
	if v := extra["policy"]; v != nil {
		if v.Kind != yaml.ScalarNode {
			return nil, lineErr(v, "%s: policy must be a policy name", what)
		}
		ps.Policy = v.Value
	}
	auth := extra["auth"]
	if auth == nil {
		return nil, lineErr(n, "%s: auth is required (api_token: {} or jwt: {...})", what)
	}
	if err := d.decodeAuth(auth, p, what); err != nil {
		return nil, err
	}
	return ps, nil
}

// decodeAuth reads `auth: {api_token: {}}` or `auth: {jwt: {...}}`, the second with the HMAC
// secret optionally given as hmac_secret_env or hmac_secret_file so files can be committed.
func (d decoder) decodeAuth(n *yaml.Node, p *adminv1.AccessProfile, what string) error {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return lineErr(n, "%s: auth must hold exactly one of api_token or jwt", what)
	}
	k, v := n.Content[0], n.Content[1]
	switch k.Value {
	case "api_token":
		a := &adminv1.ApiTokenAuth{}
		if v.Tag != "!!null" {
			if _, err := decodeObject(v, what+" auth.api_token", a, nil, nil); err != nil {
				return err
			}
		}
		p.Auth = &adminv1.AccessProfile_ApiToken{ApiToken: a}
	case "jwt":
		j := &adminv1.JwtAuth{}
		extra, err := decodeObject(v, what+" auth.jwt", j, []string{"hmac_secret_env", "hmac_secret_file"}, denyJWT)
		if err != nil {
			return err
		}
		if err := d.resolveSecret(j, extra, what); err != nil {
			return err
		}
		p.Auth = &adminv1.AccessProfile_Jwt{Jwt: j}
	default:
		return lineErr(k, "%s: unknown auth %q (want api_token or jwt)", what, k.Value)
	}
	return nil
}

func (d decoder) resolveSecret(j *adminv1.JwtAuth, extra map[string]*yaml.Node, what string) error {
	env, file := extra["hmac_secret_env"], extra["hmac_secret_file"]
	if env == nil && file == nil {
		return nil
	}
	if (env != nil && file != nil) || j.GetKey() != nil {
		n := env
		if n == nil {
			n = file
		}
		return lineErr(n, "%s: give the key once: hmac_secret, hmac_secret_env, hmac_secret_file or another key", what)
	}
	var secret string
	if env != nil {
		secret = d.getenv(env.Value)
		if secret == "" {
			return lineErr(env, "%s: hmac_secret_env: environment variable %s is not set", what, env.Value)
		}
	} else {
		b, err := d.readFile(file.Value)
		if err != nil {
			return lineErr(file, "%s: hmac_secret_file: %v", what, err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	j.Key = &adminv1.JwtAuth_HmacSecret{HmacSecret: secret}
	return nil
}

// eachItem calls fn for every element of a sequence.
func eachItem(n *yaml.Node, field string, fn func(*yaml.Node) error) error {
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return lineErr(n, "%s must be a list", field)
	}
	for _, item := range n.Content {
		if err := fn(item); err != nil {
			return err
		}
	}
	return nil
}

// label names an object of the file in errors, e.g. `endpoint "get" of collection "Sales"`.
func label(n *yaml.Node, kind, suffix string) string {
	if name := mapValue(n, "name"); name != "" {
		kind += fmt.Sprintf(" %q", name)
	}
	return kind + suffix
}

// decodeObject fills msg from a YAML mapping with protojson, after checking every key (also in
// nested messages) so an unknown field is reported with its line. Keys in extra are not proto
// fields: they are returned for the caller; keys in deny are refused.
func decodeObject(n *yaml.Node, what string, msg proto.Message, extra, deny []string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n, "%s must be a mapping", what)
	}
	out := map[string]*yaml.Node{}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	md := msg.ProtoReflect().Descriptor()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if slices.Contains(extra, k.Value) {
			if out[k.Value] != nil {
				return nil, lineErr(k, "%s: field %q given twice", what, k.Value)
			}
			out[k.Value] = v
			continue
		}
		if slices.Contains(deny, k.Value) {
			return nil, lineErr(k, "%s: field %q is not accepted here", what, k.Value)
		}
		if err := checkKeys(k, v, md, what); err != nil {
			return nil, err
		}
		rest.Content = append(rest.Content, k, v)
	}
	var generic any
	if err := rest.Decode(&generic); err != nil {
		return nil, lineErr(n, "%s: %v", what, err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, lineErr(n, "%s: %v", what, err)
	}
	if err := protojson.Unmarshal(js, msg); err != nil {
		return nil, lineErr(n, "%s: %v", what, err)
	}
	return out, nil
}

// checkKeys refuses a key that is not a field of md and recurses into nested messages.
func checkKeys(k, v *yaml.Node, md protoreflect.MessageDescriptor, what string) error {
	fd := md.Fields().ByName(protoreflect.Name(k.Value))
	if fd == nil {
		fd = md.Fields().ByJSONName(k.Value)
	}
	if fd == nil {
		return lineErr(k, "%s: unknown field %q", what, k.Value)
	}
	if fd.Kind() == protoreflect.StringKind {
		// `version: 1` or `recipe_id: 123` mean the string; YAML would make them numbers.
		items := []*yaml.Node{v}
		if fd.IsList() && v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		for _, it := range items {
			if it.Kind == yaml.ScalarNode && it.Tag != "!!null" && it.Tag != "!!str" {
				it.Tag = "!!str"
			}
		}
		return nil
	}
	if fd.Kind() != protoreflect.MessageKind || fd.IsMap() || v.Kind != yaml.MappingNode {
		return nil
	}
	sub := fd.Message()
	if strings.HasPrefix(string(sub.FullName()), "google.protobuf.") {
		return nil
	}
	if fd.IsList() {
		return nil
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if err := checkKeys(v.Content[i], v.Content[i+1], sub, what+" "+k.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkUnique refuses two resources with the same name where apply matches by name.
func checkUnique(s *Spec) error {
	seen := map[string]bool{}
	dup := func(kind, name string) error {
		key := kind + "\x00" + name
		if seen[key] {
			return fmt.Errorf("%s %q is defined twice", kind, name)
		}
		seen[key] = true
		return nil
	}
	for _, p := range s.Policies {
		if err := dup("policy", p.GetName()); err != nil {
			return err
		}
	}
	for _, c := range s.Collections {
		if err := dup("collection", c.Collection.GetName()); err != nil {
			return err
		}
		for _, e := range c.Endpoints {
			if err := dup("endpoint", c.Collection.GetName()+"/"+e.GetName()); err != nil {
				return err
			}
		}
	}
	for _, c := range s.Clients {
		if err := dup("client", c.Client.GetName()); err != nil {
			return err
		}
		for _, p := range c.Profiles {
			if err := dup("access profile", c.Client.GetName()+"/"+p.Profile.GetName()); err != nil {
				return err
			}
		}
	}
	return nil
}

func mapValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// secretSHA256 is how the server identifies an HMAC secret: hex SHA-256.
func secretSHA256(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
