package store

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const auditBucket = "audit"

// AppendAudit records ev in the same transaction as the change it describes and sets its id.
// Ids are increasing decimal sequence numbers.
func AppendAudit(tx *Tx, ev *adminv1.AuditEvent) error {
	if err := tx.markWrite(); err != nil {
		return err
	}
	b := tx.bucket(auditBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	ev.Id = strconv.FormatUint(seq, 10)
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	if err := b.Put(u64(seq), v); err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// ListAudit returns up to limit audit events, newest first, older than the event id before
// (all when empty), keeping only those of resourceID when it is set.
func ListAudit(tx *Tx, before string, limit int, resourceID string) ([]*adminv1.AuditEvent, error) {
	c := tx.bucket(auditBucket).Cursor()
	var k, v []byte
	if before == "" {
		k, v = c.Last()
	} else {
		seq, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("audit page position %q: not an event id", before)
		}
		k, v = c.Seek(u64(seq))
		if k == nil {
			k, v = c.Last()
		}
		if k != nil && binary.BigEndian.Uint64(k) >= seq {
			k, v = c.Prev()
		}
	}
	var out []*adminv1.AuditEvent
	for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
		ev := new(adminv1.AuditEvent)
		if err := proto.Unmarshal(v, ev); err != nil {
			return nil, fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if resourceID != "" && ev.GetResourceId() != resourceID && ev.GetParentId() != resourceID {
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}
