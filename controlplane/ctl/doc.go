// Package ctl is gatehousectl: the command-line client of the control plane's admin gRPC API.
// The command's main only calls Main.
//
// # Apply file
//
// apply and export use one YAML document with three lists. Fields are the admin API's proto
// field names (snake_case); references between resources are by name and apply resolves them to
// ids. Server-set fields (id, etag, create_time, update_time, parent ids, hmac_secret_sha256)
// are refused, and so is any unknown field, with its line.
//
//	policies:
//	  - name: standard
//	    description: default limits
//	    rate_limit: {requests: 100, per: minute, burst: 20}   # per: second, minute, hour
//	    quota: {requests: 10000, per: month}                  # per: day, week, month
//	collections:
//	  - name: Sales
//	    version: v1
//	    path: sales-api-v1
//	    description: invoices and orders
//	    endpoints:
//	      - {name: get-invoice, method: GET, path: "/invoices/{id}", recipe_id: rcp_123, active: true, timeout: 30s}
//	clients:
//	  - name: Acme
//	    email: ops@acme.example
//	    active: true
//	    access_profiles:
//	      - name: acme-prod
//	        collections: [Sales]          # collection names
//	        policy: standard              # policy name, optional
//	        auth: {api_token: {}}
//	        ip_allow: [10.0.0.0/8]
//	        ip_deny: [10.9.0.0/16]
//	      - name: acme-jwt
//	        collections: [Sales]
//	        auth:
//	          jwt:
//	            hmac_secret_env: ACME_JWT_SECRET   # or hmac_secret_file: PATH, public_keys: {pem: [...]},
//	            claim: sub                         #    jwks_url: URL, oidc_issuer: URL
//	            issuers: [https://idp.acme.example]
//	            audiences: [gatehouse]
//	            algorithms: [HS256]
//
// Collections, clients and policies are matched by name; endpoints by name within their
// collection and access profiles by name within their client. apply reads the current state,
// prints a plan (+ create, ~ update with the changed fields, - delete) and runs it: creates and
// updates in dependency order (policies, collections, endpoints, clients, profiles), then
// deletes in reverse. Updates send a field mask naming only the changed fields and the etag
// read with the state, so a concurrent change is refused rather than overwritten. Resources the
// file does not name are left alone unless --prune is given; pruning a collection or client
// also removes its endpoints or profiles and tokens. A second apply of the same file changes
// nothing and prints "no changes". Fields left out compare equal to the server's defaults
// (endpoints inactive with a 30s timeout, clients and profiles active). A JWT HMAC secret is
// never stored by the server; apply compares its SHA-256 with hmac_secret_sha256.
//
// export writes this format from the current state, sorted by name, without ids, tokens or
// secrets: an HMAC secret becomes an hmac_secret_env placeholder named
// GATEHOUSE_HMAC_<CLIENT>_<PROFILE> with a comment giving the secret's SHA-256.
//
// # Status
//
// status lists the xDS streams connected to the control plane (Envoy gateways, authz sidecars,
// proxyless gRPC clients): per node its cluster and connect time, then per resource type the
// version it acknowledged and its last NACK (version and the client's error, cut to one line).
// Above the table it prints the published store revision and any snapshots the control plane
// refused to publish; "no gateways connected" when no stream is open. -o yaml|json print the
// whole StatusService.ListNodes answer, errors uncut.
//
// # Calls
//
// get calls lists the newest calls from the control plane's call log (Envoy's access logs),
// newest first: time, status, method, path (never the query string), client and endpoint by
// name, duration, Envoy's response code details and the request id. --client, --profile,
// --collection and --endpoint take an id or a name (an id that no longer resolves still
// filters, since calls outlive deleted resources); --since takes a duration back from now or
// an RFC 3339 time; --limit (default 50, at most 1000) bounds the list. calls summary counts
// the calls of the last --window (default 1h, cut to the log's retention): totals by status
// class, p50/p99 duration, and the --top endpoints, clients and non-2xx details.
//
// # Connection
//
// --addr (GATEHOUSE_ADDR, default localhost:9090) and --token (GATEHOUSE_ADMIN_TOKEN, sent as
// "authorization: Bearer"). Loopback addresses use plaintext and other addresses TLS unless
// --insecure or --tls say otherwise; --ca-file verifies the server with a private CA.
//
// # Errors
//
// A failed call prints the server's message and one indented line per field violation
// ("  endpoint.path: must start with \"/\""), and exits 1; a usage error exits 2. The admin
// token is never printed.
package ctl
