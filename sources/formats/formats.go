package formats

import (
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/csv"
	"github.com/threadlift/threadlift/sources/eml"
	"github.com/threadlift/threadlift/sources/json"
	"github.com/threadlift/threadlift/sources/maildir"
	"github.com/threadlift/threadlift/sources/mbox"
)

// Registry returns a registry of every format threadlift reads. A new
// format is a package of its own and one line here.
func Registry() *sources.Registry {
	return sources.NewRegistry(
		mbox.Format(),
		csv.Format(),
		json.Format(),
		maildir.Format(),
		eml.Format(),
	)
}
