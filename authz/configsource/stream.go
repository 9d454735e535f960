package configsource

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type deltaStream = grpc.BidiStreamingClient[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]

// heldAck is a response waiting for the decision that ACKs or NACKs it.
type heldAck struct {
	typeURL string
	nonce   string
}

// stream runs one delta ADS stream until it fails or ctx ends. answered
// reports whether the control plane sent anything, which resets the backoff.
func (s *Source) stream(ctx context.Context, client discoveryv3.AggregatedDiscoveryServiceClient) (answered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	str, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	s.m.streams.Inc()

	// "*" is the explicit wildcard of the delta protocol: every resource of
	// the type, whatever its name. The versions are those of the last good
	// config so the control plane sends only what changed since.
	versions := s.st.versions()
	for k := range numKinds {
		req := &discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                 k.typeURL(),
			ResourceNamesSubscribe:  []string{"*"},
			InitialResourceVersions: versions[k.typeURL()],
		}
		if k == 0 {
			req.Node = s.node // the server keeps the node of a stream's first request
		}
		if err := str.Send(req); err != nil {
			return false, fmt.Errorf("subscribe to %s: %w", k.short(), err)
		}
	}

	recv, stopRecv := receive(ctx, str)
	defer func() {
		cancel()
		stopRecv()
	}()

	var ready [numKinds]bool
	var held []heldAck
	// outOfStep is set by a NACK: the refused changes were rolled back, but
	// the delta server counts them as delivered and will not send them
	// again on this stream, so valid resources refused with a bad one would
	// be lost. After the next update is ACKed the stream ends, and the new
	// stream declares the last good versions so the server resends the
	// difference. Ending at the NACK itself would reconnect in a loop while
	// the bad resource stays published; a resend that is refused again is
	// NACKed without Apply (see decide).
	outOfStep := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var res received
		select {
		case res = <-recv:
		case <-ctx.Done():
			return answered, ctx.Err()
		}
		// Gather one update: responses that follow each other within
		// Coalesce. A publish that changes several types (a profile and the
		// new policy it names) sends them back to back, so they go live
		// together. A held type is not sent again before its ACK, so an
		// update holding every type is complete.
		for {
			if res.err != nil {
				return answered, fmt.Errorf("receive: %w", res.err)
			}
			if !answered {
				answered = true
				s.m.connected.Set(1)
				s.cfg.Logger.Info("config stream open", "control_plane", s.cfg.Addr, "node", s.node.GetId())
			}
			h, err := s.take(res.resp, &ready)
			if err != nil {
				// Refused alone: the state is untouched and the type stays
				// not-ready if this was its first answer, which fails closed.
				if err := s.reply(str, []heldAck{h}, err.Error()); err != nil {
					return answered, err
				}
				outOfStep = true
			} else {
				held = append(held, h)
			}
			if len(held) == int(numKinds) {
				break
			}
			timer.Reset(s.cfg.Coalesce)
			select {
			case res = <-recv:
				timer.Stop()
				continue
			case <-timer.C:
			case <-ctx.Done():
				return answered, ctx.Err()
			}
			break
		}
		// The first config waits for every type (see the package doc).
		if len(held) == 0 || !ready[kindEndpoint] || !ready[kindProfile] || !ready[kindPolicy] {
			continue
		}
		nack := s.decide(ctx)
		if err := s.reply(str, held, nack); err != nil {
			return answered, err
		}
		held = held[:0]
		if nack != "" {
			outOfStep = true
		} else if outOfStep {
			return answered, errResync
		}
	}
}

// errResync ends a stream whose server counts refused resources as
// delivered, so that the next stream resumes from the last good versions.
var errResync = errors.New("resuming from the last good config after a refused update")

// take decodes a response into the pending state and returns its ACK to hold.
func (s *Source) take(resp *discoveryv3.DeltaDiscoveryResponse, ready *[numKinds]bool) (heldAck, error) {
	h := heldAck{typeURL: resp.GetTypeUrl(), nonce: resp.GetNonce()}
	d, err := decode(resp)
	if err != nil {
		s.m.nacks.Inc()
		s.cfg.Logger.Error("config update refused", "type", resp.GetTypeUrl(), "err", err)
		return h, err
	}
	s.st.apply(d)
	ready[d.kind] = true
	return h, nil
}

// received is one Recv result.
type received struct {
	resp *discoveryv3.DeltaDiscoveryResponse
	err  error
}

// receive reads the stream in its own goroutine so that the update loop can
// wait for a response with a timeout. stop must be called after ctx, the
// stream's context, is cancelled; it waits for the goroutine to end.
func receive(ctx context.Context, str deltaStream) (<-chan received, func()) {
	ch := make(chan received, numKinds)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := str.Recv()
			select {
			case ch <- received{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() { <-done }
}

// decide applies the pending changes, or rolls them back. It returns the
// NACK's error detail, or "" to ACK.
func (s *Source) decide(ctx context.Context) string {
	if s.applied && !s.st.dirty {
		// Nothing the config shows changed (a resume that found us current).
		s.st.commit()
		return ""
	}
	changed := s.st.pending()
	fp := fingerprint(changed)
	for _, r := range s.rejected {
		if r.fingerprint == fp && fp != "" {
			s.st.rollback()
			s.m.nacks.Inc()
			s.cfg.Logger.Warn("config update refused again without applying it", "err", r.err)
			return r.err
		}
	}
	cfg := s.st.assemble()
	if err := s.cfg.Apply(ctx, cfg); err != nil {
		s.st.rollback()
		s.m.nacks.Inc()
		msg := fmt.Sprintf("apply config %q: %v", cfg.GetVersion(), err)
		s.rejected = append(s.rejected, rejection{fingerprint: fp, err: msg})
		if len(s.rejected) > maxRejections {
			s.rejected = slices.Delete(s.rejected, 0, 1)
		}
		s.cfg.Logger.Error("config update refused; keeping the last good config", "version", cfg.GetVersion(), "err", err)
		return msg
	}
	var write cacheWrite
	if s.cfg.DB != nil {
		write = s.st.cacheWrite(cfg.GetVersion(), !s.synced, changed)
	}
	s.st.commit()
	s.applied = true
	s.m.applied.Inc()
	s.m.inEffect(cfg.GetVersion(), time.Now())
	s.cfg.Logger.Info("config applied", "version", cfg.GetVersion(),
		"endpoints", len(cfg.GetEndpoints()), "profiles", len(cfg.GetProfiles()), "policies", len(cfg.GetPolicies()))
	if s.cfg.DB != nil {
		// The config is live whatever the disk says, so the update is still
		// ACKed; a failed write only costs the restart-without-control-plane case.
		// After a failed write the next one rewrites the whole cache.
		err := saveCache(s.cfg.DB, write)
		s.synced = err == nil
		if err != nil {
			s.m.persistErr.Inc()
			s.cfg.Logger.Error("config applied but not cached", "version", cfg.GetVersion(), "err", err)
		}
	}
	return ""
}

// reply ACKs (errDetail "") or NACKs every held response, in arrival order.
func (s *Source) reply(str deltaStream, held []heldAck, errDetail string) error {
	for _, h := range held {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: h.typeURL, ResponseNonce: h.nonce}
		if errDetail != "" {
			req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: errDetail}
		}
		if err := str.Send(req); err != nil {
			return fmt.Errorf("send ack for %s: %w", h.typeURL, err)
		}
	}
	return nil
}

// fingerprint names an update by the resources it changes and their
// versions; a hash, so that remembering a first config of 100,000 endpoints
// costs 32 bytes. "" for an update that changes no resource.
func fingerprint(pending map[resourceKey]string) string {
	if len(pending) == 0 {
		return ""
	}
	parts := make([]string, 0, len(pending))
	for k, v := range pending {
		parts = append(parts, k.kind.short()+"/"+k.name+"@"+v)
	}
	slices.Sort(parts)
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return string(h.Sum(nil))
}
