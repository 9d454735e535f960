package server

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"gatehouse/authz/check"
)

// wireRequest is an envoy.service.auth.v3.CheckRequest decoded only as far as a decision
// needs, straight from its wire form: the message is kept once as bytes and once as a string,
// and every field read is a substring of it. Decoding a CheckRequest into the generated types
// (a map of all headers, a tree of messages) is the largest cost of an ext_authz call, so the
// gRPC server takes this path; RequestFromCheck stays for the generated types, and a
// differential fuzz test keeps the two in agreement.
type wireRequest struct {
	b   []byte
	raw string

	method, path, id string
	source           string
	sourceIsSocket   bool
	endpointID       string
	headers          []headerField // the headers map, in wire order
	headerMap        []headerField // header_map (encode_raw_headers), in wire order
	hasHeaderMap     bool
}

type headerField struct{ name, value string }

// Field numbers of the parts of envoy.service.auth.v3 read here.
const (
	fCheckAttributes  = 1  // CheckRequest.attributes
	fAttrSource       = 1  // AttributeContext.source
	fAttrRequest      = 4  // AttributeContext.request
	fAttrExtensions   = 10 // AttributeContext.context_extensions
	fPeerAddress      = 1  // Peer.address
	fAddressSocket    = 1  // Address.socket_address (oneof address)
	fAddressPipe      = 2  // Address.pipe
	fAddressInternal  = 3  // Address.envoy_internal_address
	fSocketAddress    = 2  // SocketAddress.address
	fRequestHTTP      = 2  // Request.http
	fHTTPID           = 1  // HttpRequest.id
	fHTTPMethod       = 2  // HttpRequest.method
	fHTTPHeaders      = 3  // HttpRequest.headers (map)
	fHTTPPath         = 4  // HttpRequest.path
	fHTTPHeaderMap    = 13 // HttpRequest.header_map
	fHeaderMapHeaders = 1  // HeaderMap.headers
	fHeaderKey        = 1  // HeaderValue.key
	fHeaderValue      = 2  // HeaderValue.value
	fHeaderRawValue   = 3  // HeaderValue.raw_value
	fMapKey           = 1  // map entry key
	fMapValue         = 2  // map entry value
)

var errWire = errors.New("malformed CheckRequest")

// span is a length-delimited field value as offsets into the message.
type span struct{ start, end int }

// decode fills w from the wire bytes b, which it keeps. It follows protobuf semantics for
// what it reads: the last scalar wins, repeated occurrences of a message field merge, a oneof
// takes its last case, a known field with an unexpected wire type is an unknown field. What
// it does not read is skipped. It allocates only the string copy and the header slices.
func (w *wireRequest) decode(b []byte) error {
	*w = wireRequest{b: b, raw: string(b), headers: w.headers[:0], headerMap: w.headerMap[:0]}
	it := w.iter(span{0, len(b)})
	for it.next() {
		if it.num == fCheckAttributes {
			if err := w.attributes(it.v); err != nil {
				return err
			}
		}
	}
	return it.err
}

// fieldIter walks the length-delimited fields of one message; fields of other wire types are
// skipped, as no field read here has them.
type fieldIter struct {
	b   []byte
	end int // offset of the end of b in the message
	num protowire.Number
	v   span
	err error
}

func (w *wireRequest) iter(s span) fieldIter {
	return fieldIter{b: w.b[s.start:s.end], end: s.end}
}

func (it *fieldIter) next() bool {
	for len(it.b) > 0 {
		num, typ, n := protowire.ConsumeTag(it.b)
		if n < 0 {
			it.err = errWire
			return false
		}
		it.b = it.b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, it.b)
			if n < 0 {
				it.err = errWire
				return false
			}
			it.b = it.b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(it.b)
		if n < 0 {
			it.err = errWire
			return false
		}
		start := it.end - len(it.b) + (n - len(v))
		it.b = it.b[n:]
		it.num, it.v = num, span{start, start + len(v)}
		return true
	}
	return false
}

// str returns the string field in s; proto3 strings must be UTF-8.
func (w *wireRequest) str(s span) (string, error) {
	v := w.raw[s.start:s.end]
	if !utf8.ValidString(v) {
		return "", errWire
	}
	return v, nil
}

func (w *wireRequest) attributes(s span) error {
	it := w.iter(s)
	for it.next() {
		var err error
		switch it.num {
		case fAttrSource:
			err = w.peer(it.v)
		case fAttrRequest:
			err = w.request(it.v)
		case fAttrExtensions:
			var k, v string
			if k, v, err = w.mapEntry(it.v); k == ExtEndpointID {
				w.endpointID = v
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (w *wireRequest) peer(s span) error {
	it := w.iter(s)
	for it.next() {
		if it.num == fPeerAddress {
			if err := w.address(it.v); err != nil {
				return err
			}
		}
	}
	return it.err
}

func (w *wireRequest) address(s span) error {
	it := w.iter(s)
	for it.next() {
		switch it.num {
		case fAddressSocket:
			if !w.sourceIsSocket {
				// The oneof switches to socket_address, which starts empty.
				w.sourceIsSocket, w.source = true, ""
			}
			if err := w.socketAddress(it.v); err != nil {
				return err
			}
		case fAddressPipe, fAddressInternal:
			w.sourceIsSocket, w.source = false, ""
		}
	}
	return it.err
}

func (w *wireRequest) socketAddress(s span) error {
	it := w.iter(s)
	for it.next() {
		if it.num == fSocketAddress {
			var err error
			if w.source, err = w.str(it.v); err != nil {
				return err
			}
		}
	}
	return it.err
}

func (w *wireRequest) request(s span) error {
	it := w.iter(s)
	for it.next() {
		if it.num == fRequestHTTP {
			if err := w.http(it.v); err != nil {
				return err
			}
		}
	}
	return it.err
}

func (w *wireRequest) http(s span) error {
	it := w.iter(s)
	for it.next() {
		var err error
		switch it.num {
		case fHTTPID:
			w.id, err = w.str(it.v)
		case fHTTPMethod:
			w.method, err = w.str(it.v)
		case fHTTPPath:
			w.path, err = w.str(it.v)
		case fHTTPHeaders:
			var h headerField
			h.name, h.value, err = w.mapEntry(it.v)
			w.headers = append(w.headers, h)
		case fHTTPHeaderMap:
			w.hasHeaderMap = true
			err = w.headerMapMessage(it.v)
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (w *wireRequest) headerMapMessage(s span) error {
	it := w.iter(s)
	for it.next() {
		if it.num != fHeaderMapHeaders {
			continue
		}
		h, err := w.headerValue(it.v)
		if err != nil {
			return err
		}
		w.headerMap = append(w.headerMap, h)
	}
	return it.err
}

func (w *wireRequest) headerValue(s span) (h headerField, err error) {
	var raw string
	it := w.iter(s)
	for it.next() {
		switch it.num {
		case fHeaderKey:
			h.name, err = w.str(it.v)
		case fHeaderValue:
			h.value, err = w.str(it.v)
		case fHeaderRawValue:
			raw = w.raw[it.v.start:it.v.end] // bytes: not UTF-8 checked
		}
		if err != nil {
			return h, err
		}
	}
	if raw != "" {
		h.value = raw
	}
	return h, it.err
}

// mapEntry decodes one map<string, string> entry.
func (w *wireRequest) mapEntry(s span) (key, val string, err error) {
	it := w.iter(s)
	for it.next() {
		switch it.num {
		case fMapKey:
			key, err = w.str(it.v)
		case fMapValue:
			val, err = w.str(it.v)
		}
		if err != nil {
			return "", "", err
		}
	}
	return key, val, it.err
}

// useMap reports whether headers come from the headers map; Envoy sends header_map instead
// with encode_raw_headers.
func (w *wireRequest) useMap() bool { return len(w.headers) > 0 || !w.hasHeaderMap }

// Get returns the value of the lower-case header name: from the headers map (the last entry
// of a key wins, as in a decoded map), or from header_map with repeated headers joined by
// ",".
func (w *wireRequest) Get(name string) string {
	if w.useMap() {
		for i := len(w.headers) - 1; i >= 0; i-- {
			if w.headers[i].name == name {
				return w.headers[i].value
			}
		}
		return ""
	}
	out, n := "", 0
	for _, h := range w.headerMap {
		if strings.ToLower(h.name) == name {
			if n == 0 {
				out = h.value
			} else {
				out = out + "," + h.value
			}
			n++
		}
	}
	return out
}

// eachName calls f with the lower-case name of each header, possibly more than once.
func (w *wireRequest) eachName(f func(string)) {
	if w.useMap() {
		for _, h := range w.headers {
			f(h.name)
		}
		return
	}
	for _, h := range w.headerMap {
		f(strings.ToLower(h.name))
	}
}

// toRequest is the pipeline's Request for w.
func (w *wireRequest) toRequest() check.Request {
	r := check.Request{
		Method:     w.method,
		Path:       w.path,
		Headers:    w,
		EndpointID: w.endpointID,
		RequestID:  w.id,
		// Envoy (use_remote_address) appends the source it reports here to
		// X-Forwarded-For; that entry is not a trusted hop in front of it.
		SourceAppended: true,
	}
	if r.RequestID == "" {
		r.RequestID = w.Get("x-request-id")
	}
	if w.sourceIsSocket {
		if a, err := netip.ParseAddr(w.source); err == nil {
			r.Source = a
		}
	}
	return r
}
