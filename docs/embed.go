// Package docs embeds the machine-readable API documents: the OpenAPI 3.1
// description of the ingest API (served at GET /openapi.yaml) and the JSON
// Schemas of every message in package messages.
package docs

import "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Schemas holds docs/schemas/*.schema.json.
//
//go:embed schemas
var Schemas embed.FS
