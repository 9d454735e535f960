package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Table describes one kind of resource: its bucket, how to key it and what refers to it.
// Child resources are keyed "parent/id" so that a parent's children are one prefix scan.
type Table[T proto.Message] struct {
	kind   string
	bucket string
	new    func() T
	key    func(T) (parent, id string)
	// refs lists what still refers to the resource; Delete refuses while it is not empty.
	refs func(tx *Tx, parent, id string) ([]Ref, error)
	// name returns the resource's display name for references.
	name func(T) string
}

// Kind returns the resource kind, e.g. "collection".
func (t Table[T]) Kind() string { return t.kind }

// The tables of the store.
var (
	Collections = Table[*adminv1.Collection]{
		kind: "collection", bucket: "collections",
		new:  func() *adminv1.Collection { return new(adminv1.Collection) },
		key:  func(v *adminv1.Collection) (string, string) { return "", v.GetId() },
		name: (*adminv1.Collection).GetName,
		refs: collectionRefs,
	}
	Endpoints = Table[*adminv1.Endpoint]{
		kind: "endpoint", bucket: "endpoints",
		new:  func() *adminv1.Endpoint { return new(adminv1.Endpoint) },
		key:  func(v *adminv1.Endpoint) (string, string) { return v.GetCollectionId(), v.GetId() },
		name: (*adminv1.Endpoint).GetName,
	}
	Clients = Table[*adminv1.Client]{
		kind: "client", bucket: "clients",
		new:  func() *adminv1.Client { return new(adminv1.Client) },
		key:  func(v *adminv1.Client) (string, string) { return "", v.GetId() },
		name: (*adminv1.Client).GetName,
		refs: func(tx *Tx, _, id string) ([]Ref, error) { return children(tx, Profiles, id) },
	}
	Profiles = Table[*adminv1.AccessProfile]{
		kind: "access_profile", bucket: "profiles",
		new:  func() *adminv1.AccessProfile { return new(adminv1.AccessProfile) },
		key:  func(v *adminv1.AccessProfile) (string, string) { return v.GetClientId(), v.GetId() },
		name: (*adminv1.AccessProfile).GetName,
		refs: func(tx *Tx, _, id string) ([]Ref, error) { return children(tx, Tokens, id) },
	}
	Tokens = Table[*adminv1.ApiToken]{
		kind: "token", bucket: "tokens",
		new:  func() *adminv1.ApiToken { return new(adminv1.ApiToken) },
		key:  func(v *adminv1.ApiToken) (string, string) { return v.GetProfileId(), v.GetId() },
		name: (*adminv1.ApiToken).GetName,
	}
	Policies = Table[*adminv1.AccessPolicy]{
		kind: "policy", bucket: "policies",
		new:  func() *adminv1.AccessPolicy { return new(adminv1.AccessPolicy) },
		key:  func(v *adminv1.AccessPolicy) (string, string) { return "", v.GetId() },
		name: (*adminv1.AccessPolicy).GetName,
		refs: policyRefs,
	}
	AdminTokens = Table[*adminv1.AdminToken]{
		kind: "admin_token", bucket: "admin_tokens",
		new:  func() *adminv1.AdminToken { return new(adminv1.AdminToken) },
		key:  func(v *adminv1.AdminToken) (string, string) { return "", v.GetId() },
		name: (*adminv1.AdminToken).GetName,
	}
)

func allBuckets() []string {
	return []string{
		Collections.bucket, Endpoints.bucket, Clients.bucket, Profiles.bucket,
		Tokens.bucket, Policies.bucket, AdminTokens.bucket, auditBucket,
	}
}

// Ref names a resource that refers to another.
type Ref struct {
	Kind, ID, Name string
}

// ReferencedError refuses the deletion of a resource that others still refer to.
type ReferencedError struct {
	Kind, ID string
	By       []Ref
}

func (e *ReferencedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s is still referenced by ", e.Kind, e.ID)
	for i, r := range e.By {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 10 {
			fmt.Fprintf(&b, "and %d more", len(e.By)-i)
			break
		}
		fmt.Fprintf(&b, "%s %s", r.Kind, r.ID)
		if r.Name != "" {
			fmt.Fprintf(&b, " (%q)", r.Name)
		}
	}
	return b.String()
}

func key(parent, id string) []byte {
	if parent == "" {
		return []byte(id)
	}
	return []byte(parent + "/" + id)
}

func validID(id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("invalid id %q", id)
	}
	return nil
}

// Get returns the resource with the given parent and id, or ErrNotFound.
func Get[T proto.Message](tx *Tx, t Table[T], parent, id string) (T, error) {
	var zero T
	v := tx.bucket(t.bucket).Get(key(parent, id))
	if v == nil {
		return zero, fmt.Errorf("%s %s: %w", t.kind, id, ErrNotFound)
	}
	m := t.new()
	if err := proto.Unmarshal(v, m); err != nil {
		return zero, fmt.Errorf("decode %s %s: %w", t.kind, id, err)
	}
	return m, nil
}

// List returns up to limit resources of parent ordered by id, starting after the id after.
func List[T proto.Message](tx *Tx, t Table[T], parent, after string, limit int) ([]T, error) {
	prefix := []byte(nil)
	if parent != "" {
		prefix = []byte(parent + "/")
	}
	c := tx.bucket(t.bucket).Cursor()
	var k, v []byte
	if after == "" {
		k, v = c.Seek(prefix)
	} else {
		start := key(parent, after)
		k, v = c.Seek(start)
		if bytes.Equal(k, start) {
			k, v = c.Next()
		}
	}
	var out []T
	for ; k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		m := t.new()
		if err := proto.Unmarshal(v, m); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", t.kind, k, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Each calls fn for every resource of parent in id order; parent "" on a child table visits
// every parent's children. An error from fn stops the walk and is returned.
func Each[T proto.Message](tx *Tx, t Table[T], parent string, fn func(T) error) error {
	prefix := []byte(nil)
	if parent != "" {
		prefix = []byte(parent + "/")
	}
	c := tx.bucket(t.bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		m := t.new()
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("decode %s %s: %w", t.kind, k, err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// Put writes v under the parent and id its fields name.
func Put[T proto.Message](tx *Tx, t Table[T], v T) error {
	if err := tx.markWrite(); err != nil {
		return err
	}
	parent, id := t.key(v)
	if err := validID(id); err != nil {
		return fmt.Errorf("put %s: %w", t.kind, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", t.kind, id, err)
	}
	if err := tx.bucket(t.bucket).Put(key(parent, id), b); err != nil {
		return fmt.Errorf("put %s %s: %w", t.kind, id, err)
	}
	return nil
}

// Delete removes a resource. It returns ErrNotFound when there is none and a *ReferencedError
// while anything still refers to it; callers that cascade delete the referrers first.
func Delete[T proto.Message](tx *Tx, t Table[T], parent, id string) error {
	if err := tx.markWrite(); err != nil {
		return err
	}
	b := tx.bucket(t.bucket)
	k := key(parent, id)
	if b.Get(k) == nil {
		return fmt.Errorf("%s %s: %w", t.kind, id, ErrNotFound)
	}
	if t.refs != nil {
		refs, err := t.refs(tx, parent, id)
		if err != nil {
			return err
		}
		if len(refs) > 0 {
			return &ReferencedError{Kind: t.kind, ID: id, By: refs}
		}
	}
	if err := b.Delete(k); err != nil {
		return fmt.Errorf("delete %s %s: %w", t.kind, id, err)
	}
	return nil
}

func children[T proto.Message](tx *Tx, t Table[T], parent string) ([]Ref, error) {
	var refs []Ref
	err := Each(tx, t, parent, func(v T) error {
		_, id := t.key(v)
		refs = append(refs, Ref{Kind: t.kind, ID: id, Name: t.name(v)})
		return nil
	})
	return refs, err
}

func collectionRefs(tx *Tx, _, id string) ([]Ref, error) {
	refs, err := children(tx, Endpoints, id)
	if err != nil {
		return nil, err
	}
	err = Each(tx, Profiles, "", func(p *adminv1.AccessProfile) error {
		if slices.Contains(p.GetCollectionIds(), id) {
			refs = append(refs, Ref{Kind: Profiles.kind, ID: p.GetId(), Name: p.GetName()})
		}
		return nil
	})
	return refs, err
}

func policyRefs(tx *Tx, _, id string) ([]Ref, error) {
	var refs []Ref
	err := Each(tx, Profiles, "", func(p *adminv1.AccessProfile) error {
		if p.GetPolicyId() == id {
			refs = append(refs, Ref{Kind: Profiles.kind, ID: p.GetId(), Name: p.GetName()})
		}
		return nil
	})
	return refs, err
}

// IsNotFound reports whether err is or wraps ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
