package sources

// LoadOptions say what a load may leave out for a caller that does not
// need all of a message. The zero value loads everything, as Load does.
type LoadOptions struct {
	// NoHTMLText leaves Body empty where Load would derive it from
	// HTMLBody (an mbox message whose only text is HTML). Rendering HTML
	// as text is the costliest step of decoding such a message, and a
	// caller that only counts and checks never reads the result: whether
	// the message has text at all is already told by HTMLBody. The one
	// issue the rendering could raise, "html" when html2text fails, cannot
	// happen on a string today; were it to, only a full load would report
	// it.
	NoHTMLText bool
}

// OptionsLoader is implemented by readers that can leave work out of a
// load. LoadWith is safe for concurrent use, like Load.
type OptionsLoader interface {
	LoadWith(env *Envelope, o LoadOptions) (*Message, error)
}

// LoadWith loads env from r with o when r supports it, and with r.Load
// otherwise: a reader without options does all of the work, which a
// caller asking for less must accept.
func LoadWith(r Reader, env *Envelope, o LoadOptions) (*Message, error) {
	if ol, ok := r.(OptionsLoader); ok {
		return ol.LoadWith(env, o)
	}
	return r.Load(env)
}
