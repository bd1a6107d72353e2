// Package mapping owns turning a thread of decoded messages into what is
// posted: the parent ticket (rules in order: header, subject_regex,
// lookup_csv, default_ticket_id), participants (agents become user ids),
// message keys, chronological events, chunking into one import plus
// follow-up events/import requests, and validation of every payload
// against the API's rules before anything is sent (CheckEvent: what it
// refuses is what the API refuses). Damage that can be repaired without
// losing mail is repaired here with a warning: a blank body becomes
// EmptyBody, recipients beyond the API's limits are listed in the body,
// a message without a recipient goes to Options.DefaultRecipient.
//
// It does no network I/O; the same Plan serves validate and import.
package mapping
