package compile

import "google.golang.org/protobuf/encoding/protowire"

// The per-route ext_authz config tells the authz which endpoint it checks:
// FilterConfig{is_optional, config: ExtAuthzPerRoute{check_settings{context_extensions}}}.
// It is encoded by hand because reflection-based marshalling of two nested Anys per route was
// a third of the compile time at 100,000 endpoints; TestAuthzCheckEncoding holds it equal to
// the deterministic proto.Marshal output.

// Type URLs and field numbers of the hand-encoded per-route config.
const (
	filterConfigType     = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
	extAuthzPerRouteType = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
	// FilterConfig.config, FilterConfig.is_optional; Any.type_url, Any.value;
	// ExtAuthzPerRoute.check_settings; CheckSettings.context_extensions; map key and value.
	fieldFilterConfigConfig   protowire.Number = 1
	fieldFilterConfigOptional protowire.Number = 2
	fieldAnyTypeURL           protowire.Number = 1
	fieldAnyValue             protowire.Number = 2
	fieldPerRouteCheck        protowire.Number = 2
	fieldCheckContext         protowire.Number = 1
	fieldMapKey               protowire.Number = 1
	fieldMapValue             protowire.Number = 2
)

// encodeAuthzCheck writes the FilterConfig bytes in one allocation. Map entries are in key
// order, as deterministic marshalling writes them.
func encodeAuthzCheck(collectionID, endpointID, recipeID string) []byte {
	kv := [3][2]string{
		{ContextCollectionID, collectionID},
		{ContextEndpointID, endpointID},
		{ContextRecipeID, recipeID},
	}
	var entrySizes [3]int
	check := 0
	for i, e := range kv {
		entrySizes[i] = fieldSize(fieldMapKey, len(e[0])) + fieldSize(fieldMapValue, len(e[1]))
		check += fieldSize(fieldCheckContext, entrySizes[i])
	}
	perRoute := fieldSize(fieldPerRouteCheck, check)
	anySize := fieldSize(fieldAnyTypeURL, len(extAuthzPerRouteType)) + fieldSize(fieldAnyValue, perRoute)
	total := fieldSize(fieldFilterConfigConfig, anySize) +
		protowire.SizeTag(fieldFilterConfigOptional) + protowire.SizeVarint(1)

	buf := make([]byte, 0, total)
	buf = appendLen(buf, fieldFilterConfigConfig, anySize)
	buf = appendString(buf, fieldAnyTypeURL, extAuthzPerRouteType)
	buf = appendLen(buf, fieldAnyValue, perRoute)
	buf = appendLen(buf, fieldPerRouteCheck, check)
	for i, e := range kv {
		buf = appendLen(buf, fieldCheckContext, entrySizes[i])
		buf = appendString(buf, fieldMapKey, e[0])
		buf = appendString(buf, fieldMapValue, e[1])
	}
	buf = protowire.AppendTag(buf, fieldFilterConfigOptional, protowire.VarintType)
	return protowire.AppendVarint(buf, 1)
}

// fieldSize is the encoded size of a length-delimited field with n bytes of content.
func fieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendLen(buf []byte, num protowire.Number, n int) []byte {
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendVarint(buf, uint64(n))
}

func appendString(buf []byte, num protowire.Number, s string) []byte {
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendString(buf, s)
}
