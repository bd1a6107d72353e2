package htmltext

import (
	"github.com/inbucket/html2text"
)

// Render is the plain text of an HTML body: the Body of a message whose
// only text is HTML, for every source (contract §3).
func Render(html string) (string, error) {
	return html2text.FromString(html, html2text.Options{PrettyTables: false})
}
