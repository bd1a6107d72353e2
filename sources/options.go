package sources

import (
	"errors"
	"time"
)

// DefaultMaxMessageBytes is the default Options.MaxMessageBytes (25 MiB).
const DefaultMaxMessageBytes = 25 << 20

// Options configures a source reader. The zero value means defaults.
type Options struct {
	// MaxMessageBytes is the largest raw record accepted; larger records get
	// an error Issue "too-large". 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Name is what Location.File shows; default: the path as given.
	Name string
	// Now is used for the "more than a day in the future" date check;
	// default time.Now.
	Now func() time.Time
	// Fields renames the default field names of csv/json records
	// (contract §3); mbox ignores it.
	Fields map[string]string
	// ThreadKeyPrefix is put before the thread_id and message_id of
	// csv/json records, and into their content hash (Record.Envelope), so
	// that two exports numbering their conversations alike stay apart;
	// mbox ignores it.
	ThreadKeyPrefix string
}

// WithDefaults returns o with its zero fields set to their defaults, Name
// to path. Every reader applies it when it is opened.
func (o Options) WithDefaults(path string) Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Name == "" {
		o.Name = path
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrClosed is returned by Next and Load after Close.
var ErrClosed = errors.New("sources: reader is closed")
