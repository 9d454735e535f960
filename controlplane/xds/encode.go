package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// encodedResource is one resource as served: its encoding, version and, for a route table,
// the hashes of its routes. It is kept from publish to publish while compile passes the same
// message (compile.Compiler does for unchanged resources), so an unchanged resource is not
// encoded, hashed or validated again.
type encodedResource struct {
	b       []byte
	raw     proto.Message // encoded(b)
	version string
	routes  []uint64
}

// encodedRoute is one route of a route table, encoded once and kept while compile passes the
// same route message: a one-endpoint change then encodes one route, not the 3 MB table.
type encodedRoute struct {
	b   []byte
	h   uint64 // maphash of b, as in snapshot.routes
	sum [sha256.Size]byte
	// fresh is true when the route was encoded in this publish and may still need validation.
	fresh bool
}

// encodeRouteTable encodes rc byte-equal to a deterministic proto.Marshal, reusing the
// encodings of routes found in prev and recording every route in next. The version covers the
// table without routes and each route's digest in order, so a table is never hashed whole.
func encodeRouteTable(rc *route.RouteConfiguration, seed maphash.Seed, prev, next map[*route.Route]*encodedRoute) ([]byte, string, []*encodedRoute, error) {
	mo := proto.MarshalOptions{Deterministic: true}
	shell, msgs := splitRoutes(rc)
	known := 0
	for _, r := range msgs {
		if _, ok := prev[r]; ok {
			known++
		}
	}
	if known < len(msgs)/2 {
		// Mostly new routes (a first publish, or a caller that compiles afresh each time):
		// marshaling the table in one pass is cheaper than route by route.
		return encodeWholeTable(rc, shell, msgs, seed, next)
	}
	sb, err := mo.Marshal(shell)
	if err != nil {
		return nil, "", nil, fmt.Errorf("marshal: %w", err)
	}
	h := sha256.New()
	h.Write(sb)
	perHost := make([][]*encodedRoute, len(rc.GetVirtualHosts()))
	var all []*encodedRoute
	size := len(sb)
	for i, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			e, ok := prev[r]
			if !ok {
				if e, ok = next[r]; !ok {
					b, err := mo.Marshal(r)
					if err != nil {
						return nil, "", nil, fmt.Errorf("marshal route %q: %w", r.GetName(), err)
					}
					e = &encodedRoute{b: b, h: maphash.Bytes(seed, b), sum: sha256.Sum256(b), fresh: true}
				}
			}
			next[r] = e
			perHost[i] = append(perHost[i], e)
			all = append(all, e)
			h.Write(e.sum[:])
			size += protowire.SizeTag(routesField) + protowire.SizeBytes(len(e.b))
		}
	}
	b, err := spliceRoutes(make([]byte, 0, size+16*len(perHost)), sb, perHost)
	if err != nil {
		return nil, "", nil, err
	}
	return b, hex.EncodeToString(h.Sum(nil)[:12]), all, nil
}

// encodeWholeTable is encodeRouteTable for a table of mostly new routes: one marshal, whose
// routes' encodings are found in place. The version is computed the same way.
func encodeWholeTable(rc, shell *route.RouteConfiguration, msgs []*route.Route, seed maphash.Seed, next map[*route.Route]*encodedRoute) ([]byte, string, []*encodedRoute, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rc)
	if err != nil {
		return nil, "", nil, fmt.Errorf("marshal: %w", err)
	}
	sb, err := proto.MarshalOptions{Deterministic: true}.Marshal(shell)
	if err != nil {
		return nil, "", nil, fmt.Errorf("marshal: %w", err)
	}
	h := sha256.New()
	h.Write(sb)
	all := make([]*encodedRoute, 0, len(msgs))
	entries := make([]encodedRoute, len(msgs))
	err = eachRoute(b, func(rb []byte) {
		i := len(all)
		if i >= len(msgs) {
			return
		}
		e := &entries[i]
		if old, ok := next[msgs[i]]; ok {
			e = old // the same route twice in this table
		} else {
			*e = encodedRoute{b: rb, h: maphash.Bytes(seed, rb), sum: sha256.Sum256(rb), fresh: true}
			next[msgs[i]] = e
		}
		all = append(all, e)
		h.Write(e.sum[:])
	})
	if err != nil {
		return nil, "", nil, err
	}
	if len(all) != len(msgs) {
		return nil, "", nil, fmt.Errorf("encode route table: %d routes encoded, %d expected", len(all), len(msgs))
	}
	return b, hex.EncodeToString(h.Sum(nil)[:12]), all, nil
}

// Field numbers of RouteConfiguration.virtual_hosts and VirtualHost.routes.
const vhostsField, routesField protowire.Number = 2, 3

// spliceRoutes appends to dst the encoding of a route table from the encoding of its shell
// (the table with no routes) and the encoded routes of each virtual host. A deterministic
// marshal writes fields in number order, so the routes go before the virtual host's first
// field numbered above routes: the result is what marshaling the whole table gives.
func spliceRoutes(dst, shell []byte, perHost [][]*encodedRoute) ([]byte, error) {
	host := 0
	err := eachRawField(shell, func(num protowire.Number, typ protowire.Type, field, payload []byte) error {
		if num != vhostsField || typ != protowire.BytesType {
			dst = append(dst, field...)
			return nil
		}
		if host >= len(perHost) {
			return fmt.Errorf("encode route table: more virtual hosts than expected")
		}
		routes := perHost[host]
		host++
		n := len(payload)
		for _, r := range routes {
			n += protowire.SizeTag(routesField) + protowire.SizeBytes(len(r.b))
		}
		dst = protowire.AppendTag(dst, vhostsField, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		done := false
		appendRoutes := func() {
			for _, r := range routes {
				dst = protowire.AppendTag(dst, routesField, protowire.BytesType)
				dst = protowire.AppendBytes(dst, r.b)
			}
			done = true
		}
		err := eachRawField(payload, func(num protowire.Number, _ protowire.Type, field, _ []byte) error {
			if !done && num > routesField {
				appendRoutes()
			}
			dst = append(dst, field...)
			return nil
		})
		if !done {
			appendRoutes()
		}
		return err
	})
	if err == nil && host != len(perHost) {
		err = fmt.Errorf("encode route table: %d virtual hosts encoded, %d expected", host, len(perHost))
	}
	return dst, err
}

// eachRawField calls fn with every top-level field of an encoding: its number and wire type,
// its whole encoding (tag included) and, for a length-delimited field, its payload.
func eachRawField(b []byte, fn func(num protowire.Number, typ protowire.Type, field, payload []byte) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("encode route table: %w", protowire.ParseError(l))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[l:])
		if m < 0 {
			return fmt.Errorf("encode route table: %w", protowire.ParseError(m))
		}
		var payload []byte
		if typ == protowire.BytesType {
			payload, _ = protowire.ConsumeBytes(b[l:])
		}
		if err := fn(num, typ, b[:l+m], payload); err != nil {
			return err
		}
		b = b[l+m:]
	}
	return nil
}
