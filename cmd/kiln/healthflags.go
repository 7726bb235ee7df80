package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/container"
)

// addHealthFlags adds docker's health check flags of `kiln run` and `kiln create`.
func addHealthFlags(f *pflag.FlagSet, h *container.HealthFlags) {
	f.StringVar(&h.Cmd, "health-cmd", "", "command to run to check health (run by /bin/sh -c or the image's SHELL)")
	f.DurationVar(&h.Interval, "health-interval", 0, "time between checks, e.g. 30s (0 = the image's, else 30s)")
	f.DurationVar(&h.Timeout, "health-timeout", 0, "time a check may take before it is killed and counts as failed (0 = the image's, else 30s)")
	f.IntVar(&h.Retries, "health-retries", 0, "consecutive failures that make the container unhealthy (0 = the image's, else 3)")
	f.DurationVar(&h.StartPeriod, "health-start-period", 0, "time after start in which failures do not count (0 = the image's)")
	f.DurationVar(&h.StartInterval, "health-start-interval", 0, "time between checks during the start period (0 = the image's, else 5s)")
	f.BoolVar(&h.Disable, "no-healthcheck", false, "run no health check, not even the image's HEALTHCHECK")
}

// inspectHealthcheck is docker's Config.Healthcheck; durations in nanoseconds, 0 = default.
type inspectHealthcheck struct {
	Test          []string `json:"Test"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

func inspectHealth(h *container.HealthConfig) *inspectHealthcheck {
	if h == nil {
		return nil
	}
	return &inspectHealthcheck{Test: h.Test, Interval: int64(h.Interval), Timeout: int64(h.Timeout),
		StartPeriod: int64(h.StartPeriod), StartInterval: int64(h.StartInterval), Retries: h.Retries}
}

// checkHealthFilter refuses a health= value docker does not know.
func checkHealthFilter(f filters) error {
	for _, v := range f["health"] {
		switch container.HealthStatus(v) {
		case container.HealthStarting, container.HealthHealthy, container.HealthUnhealthy, container.HealthNone:
		default:
			return usageError{fmt.Errorf("invalid filter health=%s: use starting, healthy, unhealthy or none", v)}
		}
	}
	return nil
}
