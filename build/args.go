package build

import (
	goruntime "runtime"
	"sort"
	"strings"
)

// kvList is an ordered KEY=VALUE list usable as BuildKit's shell.EnvGetter; later entries win.
type kvList []string

// Get returns the value of the last entry for key.
func (l kvList) Get(key string) (string, bool) {
	for i := len(l) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(l[i], "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

// Keys lists the distinct keys.
func (l kvList) Keys() []string {
	seen := map[string]bool{}
	var keys []string
	for _, e := range l {
		k, _, _ := strings.Cut(e, "=")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// set replaces key's entry in place (keeping its position) or appends it.
func (l kvList) set(key, value string) kvList {
	for i, e := range l {
		if k, _, _ := strings.Cut(e, "="); k == key {
			out := append(kvList(nil), l...)
			out[i] = key + "=" + value
			return out
		}
	}
	return append(append(kvList(nil), l...), key+"="+value)
}

// platformArgs are the automatic ARGs BuildKit defines; kiln builds for the host only.
func platformArgs() map[string]string {
	os, arch := "linux", goruntime.GOARCH
	p := os + "/" + arch
	return map[string]string{
		"BUILDPLATFORM": p, "BUILDOS": os, "BUILDARCH": arch, "BUILDVARIANT": "",
		"TARGETPLATFORM": p, "TARGETOS": os, "TARGETARCH": arch, "TARGETVARIANT": "",
	}
}

// proxyArgs may be passed with --build-arg without an ARG and reach RUN steps, as in docker,
// but never the image or the cache key.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// unusedArgs returns the --build-args no ARG consumed, sorted, for the build's warning.
func unusedArgs(given map[string]string, used map[string]bool) []string {
	var out []string
	for k := range given {
		if !used[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
