package filters

import "log/slog"

// Env is what the owner hands a stage when it builds one.
type Env struct {
	// Logger is the structured logger; a stage adds its own "stage" attribute.
	Logger *slog.Logger
	// Dir is the directory that relative paths in the config (lists, packs)
	// are resolved against: the config file's directory.
	Dir string
	// IPv6Prefix is the prefix length IPv6 client keys are collapsed to.
	IPv6Prefix int
	// Previous is the instance this one replaces on a reload, or nil. A stage
	// with state worth keeping (buckets, bans, a Redis client) takes it over
	// from Previous when it is of its own type; the owner closes Previous
	// after the swap, so whatever is taken over must survive that Close.
	Previous Filter
}

// Log returns env's logger with a stage attribute, or a discarding logger.
func (e Env) Log(stage string) *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger.With("stage", stage)
}
