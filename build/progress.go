package build

import "time"

// EventKind says what happened to a vertex.
type EventKind int

// The kinds of progress events, in the order a vertex sees them.
const (
	EventStarted      EventKind = iota // work on the vertex began (after its inputs were ready)
	EventCached                        // the cache answered; nothing ran
	EventLog                           // output of a running step (Data holds the bytes)
	EventDone                          // the step finished and its result is stored
	EventFailed                        // the step failed; Err says why
	EventWarning                       // a non-fatal problem with the build (Data holds the message)
	EventExplain                       // why a step missed the cache (Data holds the reason; with Options.Explain)
	EventCacheSummary                  // what the cache did, for the caller to report last (Cache holds it)
	EventCheck                         // a build-check warning on the Buildfile (Check holds it)
)

func (k EventKind) String() string {
	return [...]string{"started", "cached", "log", "done", "failed", "warning", "explain", "cache-summary", "check"}[k]
}

// Event is one progress report; rendering is the caller's job.
type Event struct {
	Kind     EventKind
	Index    int    // the vertex's position in the graph, stable for the build (1-based; 0 for build-level events)
	Name     string // the vertex's display name
	Time     time.Time
	Duration time.Duration // for EventDone and EventFailed
	Data     []byte        // for EventLog and EventWarning
	Err      error         // for EventFailed
	Cache    *CacheSummary // for EventCacheSummary
	Check    *Check        // for EventCheck
}

// CacheSummary is what the cache did for a build.
type CacheSummary struct {
	Cached, Run int           // steps the cache answered, steps that ran
	Pulled      int64         // bytes fetched for imported caches: manifests, configs and blobs
	Saved       time.Duration // the recorded run time of the cached steps
}

// Reporter receives progress events. Calls come from several goroutines, one at a time.
type Reporter func(Event)
