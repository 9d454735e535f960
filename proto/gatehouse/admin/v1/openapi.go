package adminv1

import _ "embed"

//go:embed admin.swagger.json
var openAPI []byte

// OpenAPI returns the OpenAPI (Swagger 2.0) description of the admin REST API, generated from
// admin.proto by protoc-gen-openapiv2 and embedded so the control plane can serve it. The
// returned slice is shared: do not modify it.
func OpenAPI() []byte { return openAPI }
