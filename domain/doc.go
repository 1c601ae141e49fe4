// Package domain is the heart of Turbo Lane: the Job aggregate (Decide turns a
// command into events, Apply folds an event into state), the processor specs
// with their parameter validation, plans and their file-size limits, file
// records and the error vocabulary shared by every other package.
//
// It must stay pure: no I/O, no clocks read behind the caller's back, and no
// imports of other Turbo Lane packages or heavy dependencies. Everything else
// in the repository depends on it; it depends on nothing of ours.
package domain
