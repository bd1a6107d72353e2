// Package mapping owns turning a thread of decoded messages into what is
// posted: the parent ticket (rules in order: header, subject_regex,
// lookup_csv, default_ticket_id), participants (agents become user ids),
// message keys, chronological events, chunking into one import plus
// follow-up events/import requests, and validation of every payload
// against the API's rules before anything is sent.
//
// It does no network I/O; the same Plan serves validate and import.
package mapping
