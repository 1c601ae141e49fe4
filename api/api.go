// Package api holds the OpenAPI 3.0 description of Turbo Lane's HTTP
// contract, embedded so that the server can serve it at
// GET /api/v1/openapi.yaml and contract tests can check responses against it.
// It is documentation only: it must not import other Turbo Lane packages,
// contain handlers or decide behaviour; when the spec and DESIGN.md Part 1
// disagree, the spec is the one to fix.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.0.3 document (YAML) describing every endpoint of
// the contract. Callers must not modify it.
//
//go:embed openapi.yaml
var OpenAPI []byte
