// Package htmltext turns an HTML body into the plain text a message
// without a text part gets as its Body: one rendering for every format
// (contract §3). It imports nothing of threadlift.
package htmltext
