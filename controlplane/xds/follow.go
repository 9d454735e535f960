package xds

import (
	"context"
	"errors"
	"fmt"
)

// BuildFunc reads the newest store revision and compiles it: the cmd wiring passes a function
// over the store and compile, which this package does not import.
type BuildFunc func(ctx context.Context) (rev uint64, res Resources, err error)

// Follow is the one writer: it publishes build's output once at start and again after every
// revision received from revs, until ctx ends or revs is closed. Subscribe before calling it so
// that no revision committed meanwhile is missed. Revisions that arrive while a publish runs
// collapse into one rebuild of the newest. A build or publish that fails is logged and the
// last good snapshot stays served; only a revision that compiles and validates is published.
func (s *Server) Follow(ctx context.Context, revs <-chan uint64, build BuildFunc) error {
	var last uint64
	published := false
	step := func() {
		rev, res, err := build(ctx)
		if err != nil {
			s.log.Error("xds build failed; serving the last good snapshot", "error", err)
			return
		}
		if published && rev <= last {
			return // already served: a notification raced the initial build
		}
		if err := s.Publish(ctx, rev, res); err != nil {
			if !errors.Is(err, ErrInvalidSnapshot) {
				s.log.Error("xds publish failed", "revision", rev, "error", err)
			}
			return
		}
		last, published = rev, true
	}
	step()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-revs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("xds follow: revision channel closed")
			}
			step()
		}
	}
}
