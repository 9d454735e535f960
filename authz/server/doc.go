// Package server exposes the check pipeline: Envoy's ext_authz gRPC API, an HTTP check
// endpoint with Envoy http_service semantics (also spoken by nginx auth_request and Caddy
// forward_auth), gRPC health, /healthz, /readyz and /metrics.
//
// How each proxy is wired (testdata holds the nginx and Caddy configurations the tests run):
//
//   - Envoy, gRPC (the platform's path): envoy.service.auth.v3.Authorization/Check on the
//     gRPC port. The route's context_extensions name the endpoint. On OK every identity
//     header is set with OVERWRITE_IF_EXISTS_OR_ADD; the credential headers and every fixed
//     owned header the call does not set (x-gatehouse-jwt-claims on an API-token call,
//     x-gatehouse-token-id on a JWT call) are removed whether or not Envoy sent them, as is
//     any other x-gatehouse-* header Envoy sent; RateLimit headers go to the caller. A
//     spoofed x-gatehouse-param-* header that Envoy does not send to ext_authz (see
//     allowed_headers) cannot be named here, so only the header_mutation filter ahead of
//     ext_authz removes it.
//   - Envoy, http_service: path_prefix "/check" on the HTTP port. A 200 carries the
//     x-gatehouse-* headers (every fixed one, empty when it does not apply) and
//     X-Envoy-Auth-Headers-To-Remove; a refusal carries status, headers and problem+json.
//   - Caddy forward_auth (and Traefik ForwardAuth): uri /forward-auth; the proxy sends
//     X-Forwarded-Method and X-Forwarded-Uri.
//     The Caddyfile drops inbound X-Gatehouse-* before forward_auth and lists the headers
//     to copy; refusals pass through unchanged.
//   - nginx auth_request: /auth-request with X-Original-Method and X-Original-URI. nginx
//     only passes 2xx, 401 and 403 from a check, so refusals also carry X-Gatehouse-Status
//     and X-Gatehouse-Problem for an error_page location to replay. nginx cannot drop
//     header names it does not know, so the HTTP check refuses (401 invalid_credentials)
//     any request that still carries an x-gatehouse-* header.
//
// Behind a proxy the peer of the HTTP check is the proxy: run the sidecar with
// --trusted-hops=1 so the caller's address is taken from the entry the proxy appended to
// X-Forwarded-For, and never from one the caller wrote.
package server
