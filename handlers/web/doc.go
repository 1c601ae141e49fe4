// Package web is Turbo Lane's browser page: one static HTML page with its
// stylesheet and script, embedded in the binary with go:embed, no build step
// and nothing fetched from the network at run time.
//
// The page talks to the JSON API under /api/v1 on the same origin, as an
// anonymous user with the tl_session cookie the API sets: it lists the
// processors of GET /api/v1/processors, uploads files (multipart, with upload
// progress), creates jobs (a batch for several files), polls them (first after
// 1 s, then every 2 s), links their results, downloads several as one ZIP and
// shows the session's job history with retry and delete.
//
// Handler serves the page at "/" and its files at "/assets/<name>"; the
// handlers package mounts it next to the API.
package web
