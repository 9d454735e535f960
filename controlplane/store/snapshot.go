package store

import (
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Snapshot is the whole configuration at one revision: what compile turns into Envoy and authz
// resources. Each slice is sorted by key (parent id, then id). Neither the slices nor the
// messages may be modified: unchanged messages are shared with earlier and later Snapshots.
type Snapshot struct {
	// Revision is the store revision the snapshot was read at.
	Revision uint64
	// Collections sorted by id.
	Collections []*adminv1.Collection
	// Endpoints sorted by collection id, then id.
	Endpoints []*adminv1.Endpoint
	// Clients sorted by id.
	Clients []*adminv1.Client
	// Profiles sorted by client id, then id.
	Profiles []*adminv1.AccessProfile
	// Tokens sorted by profile id, then id; revoked tokens included (compile drops them).
	Tokens []*adminv1.ApiToken
	// Policies sorted by id.
	Policies []*adminv1.AccessPolicy
}
