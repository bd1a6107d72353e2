// Package report owns what a run tells people afterwards: the validation
// report (report.json, contract §7, described by report.schema.json, and
// report.html, one self-contained page rendered from embedded templates),
// the import run summary (summary.json) and its page, all written
// atomically. It imports nothing of the pipeline; the pipeline fills it.
//
// Every string in the pages that comes from an archive is shown as text
// through html/template's escaping: a subject or body holding <script> or
// <img onerror=...> stays inert. The pages carry a Content-Security-Policy
// that forbids any script and any fetch, and need no network to view.
package report
