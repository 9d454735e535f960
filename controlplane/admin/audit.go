package admin

import (
	"context"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// audits implements AuditService.
type audits struct {
	adminv1.UnimplementedAuditServiceServer
	s *Server
}

func (a audits) ListAuditEvents(ctx context.Context, req *adminv1.ListAuditEventsRequest) (*adminv1.ListAuditEventsResponse, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	list := listKey("audit", req.GetResourceId())
	before, err := parsePageToken(list, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := pageSize(req.GetPageSize())
	out := &adminv1.ListAuditEventsResponse{}
	err = a.s.read("list audit events", func(tx *store.Tx) error {
		evs, err := store.ListAudit(tx, before, n+1, req.GetResourceId())
		if err != nil {
			return err
		}
		if len(evs) > n {
			evs = evs[:n]
			out.NextPageToken = pageToken(list, evs[n-1].GetId())
		}
		out.AuditEvents = evs
		return nil
	})
	return out, err
}
