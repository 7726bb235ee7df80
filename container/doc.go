// Package container keeps containers that outlive the kiln command that made them: their ids and
// unique names, their on-disk records under <root>/containers/<id>/ (config.json, state.json),
// the monitor process that runs them through the runtime package and applies restart policies,
// and their json-lines logs.
//
// Every file is written temp → fsync → rename. The monitor is the only writer of state.json while
// it lives; readers detect a dead monitor by its pid and process start time and report the truth.
package container
