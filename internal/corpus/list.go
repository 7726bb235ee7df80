package corpus

import (
	"archive/tar"
	"strings"
)

// Shorthands for entries.
func reg(name, body string) Entry { return Entry{Name: name, Body: body} }
func dir(name string) Entry       { return Entry{Name: name, Type: tar.TypeDir} }
func symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}
func hardlink(name, target string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: target} }
func layer(entries ...Entry) Layer       { return Layer{Entries: entries} }

// canaryInside is the canary's path inside a layer, so links to it resolve (inside the layer).
var canaryInside = dir(strings.TrimPrefix(Canary, "/") + "/")

// runAsNobody makes kiln look the user up in the image's passwd and group before it starts.
var runAsNobody = []string{"-u", "nobody"}

const pwned = "pwned\n"

// Cases returns the corpus, in a fixed order.
func Cases() []Case {
	return []Case{
		// Paths that leave the layer.
		{Name: "traversal-dotdot", Expect: RefusedAtRun, Want: `".."`,
			Doc:    "a file named ../../../../../tmp/kiln-canary-corpus/pwned",
			Layers: []Layer{layer(reg("../../../../../../../.."+Canary+"/pwned", pwned))}},
		{Name: "traversal-nested", Expect: RefusedAtRun, Want: `".."`,
			Doc:    "etc/../../.. climbing out from inside a directory, then a dir and a file",
			Layers: []Layer{layer(dir("etc/../../../../../../../../tmp/kiln-canary-corpus/new/"), reg("etc/../../../../../../../.."+Canary+"/secret", pwned))}},
		{Name: "absolute-path", Expect: Contained, Want: "inside-the-image",
			Doc:    "absolute names /tmp/kiln-canary-corpus/...: they land inside the image",
			Layers: []Layer{layer(reg(Canary+"/secret", "inside-the-image\n"), reg(Canary+"/passwd", pwned))},
			Script: "$B cat " + Canary + "/secret"},

		// Symlink escapes.
		{Name: "symlink-absolute", Expect: Contained, Want: "inside-the-image",
			Doc:    "escape -> /tmp/kiln-canary-corpus, then files written through it",
			Layers: []Layer{layer(canaryInside, symlink("escape", Canary), reg("escape/passwd", "inside-the-image\n"), reg("escape/new", pwned), dir("escape/newdir/"))}},
		{Name: "symlink-dangling", Expect: RefusedAtRun, Want: "dangling symlink",
			Doc:    "escape -> /tmp/kiln-canary-corpus, which the layer lacks, then a file written through it",
			Layers: []Layer{layer(symlink("escape", Canary), reg("escape/passwd", pwned))}},
		{Name: "symlink-relative", Expect: Contained, Want: "inside-the-image",
			Doc:    "escape -> ../../../../../../tmp/kiln-canary-corpus, then files written through it",
			Layers: []Layer{layer(canaryInside, symlink("escape", "../../../../../../../.."+Canary), reg("escape/passwd", "inside-the-image\n"), reg("escape/empty/x", pwned))}},
		{Name: "symlink-chain", Expect: Contained, Want: "inside-the-image",
			Doc: "a -> b -> c -> /tmp/kiln-canary-corpus, then a file written through a",
			Layers: []Layer{layer(canaryInside, symlink("a", "b"), symlink("b", "c"), symlink("c", Canary),
				reg("a/passwd", "inside-the-image\n"), symlink("escape", "a"))}},
		{Name: "symlink-across-layers", Expect: Contained, Want: "inside-the-image",
			Doc: "layer 1 plants escape -> /tmp/kiln-canary-corpus, layer 2 writes escape/passwd and a dir",
			Layers: []Layer{layer(symlink("escape", Canary)),
				layer(reg("escape/passwd", "inside-the-image\n"), dir("escape/dir/"), reg("escape/dir/keep", pwned))}},
		{Name: "symlink-dir-swap", Expect: Contained, Want: "done",
			Doc: "layer 1 has a real dir etc2, layer 2 replaces it by a symlink to the canary, layer 3 writes into it",
			Layers: []Layer{layer(dir("etc2/"), reg("etc2/passwd", "x\n")),
				layer(symlink("etc2", Canary)),
				layer(reg("etc2/passwd", pwned), symlink("escape", "etc2"))}},
		{Name: "symlink-procroot", Expect: RefusedOrContained, Want: "done",
			Doc:    "escape -> /proc/self/root/tmp/kiln-canary-corpus, a magic link on the host",
			Layers: []Layer{layer(symlink("escape", "/proc/self/root"+Canary), reg("escape/passwd", pwned))}},
		{Name: "symlink-loop", Expect: RefusedOrContained, Want: "done",
			Doc:    "a -> b -> a, then a/x",
			Layers: []Layer{layer(symlink("a", "b"), symlink("b", "a"), reg("a/x", pwned))}},
		{Name: "passwd-symlink-to-host", Expect: RefusedAtRun, Want: "kilncanary",
			Doc:      "/etc/passwd -> the canary's passwd, run as its user: kiln must not resolve the user on the host",
			Layers:   []Layer{layer(symlink("etc/passwd", Canary+"/passwd"), symlink("etc/group", Canary+"/group"))},
			RunFlags: []string{"-u", "kilncanary"}},

		{Name: "etc-symlink-to-host", Expect: RefusedOrContained, Want: "done",
			Doc:    "/etc -> /tmp/kiln-canary-corpus: kiln's /etc/hosts, resolv.conf and hostname mounts must land inside",
			Layers: []Layer{layer(Entry{Name: ".wh.etc"}), layer(symlink("etc", Canary))}},
		{Name: "dev-symlink-to-host", Expect: RefusedAtRun, Want: "/dev is a symlink",
			Doc:    "/dev -> /tmp/kiln-canary-corpus/dir (runc <1.3.6 set up /dev through it on the host, CVE-2026-41579)",
			Layers: []Layer{layer(symlink("dev", Canary+"/dir"))}},
		{Name: "dev-proc-sys-symlinks", Expect: RefusedAtRun, Want: "is a symlink",
			Doc:    "/proc -> /tmp/kiln-canary-corpus, /sys -> ../../tmp/kiln-canary-corpus/empty, /run -> the canary",
			Layers: []Layer{layer(symlink("proc", Canary), symlink("sys", "../../../.."+Canary+"/empty"), symlink("run", Canary))}},

		{Name: "etc-files-symlinks", Expect: Contained, Want: "done",
			Doc: "/etc/hosts, resolv.conf and hostname are links to canary files: kiln's own copies go inside",
			Layers: []Layer{layer(symlink("etc/hosts", Canary+"/secret"), symlink("etc/resolv.conf", Canary+"/passwd"),
				symlink("etc/hostname", Canary+"/group"))},
			Script: "$B cat /etc/hosts /etc/resolv.conf /etc/hostname; $B echo pwned > /etc/hosts; $B echo done"},

		// Hostile run configs.
		{Name: "config-workdir-procfd", Expect: RefusedAtRun, Want: "/proc/self/fd/7",
			Doc:    "WorkingDir /proc/self/fd/7, which reached the host through a leaked fd in runc < 1.1.12 (CVE-2024-21626)",
			Config: func(c *RunConfig) { c.WorkingDir = "/proc/self/fd/7" }},
		{Name: "config-workdir-climb", Expect: Contained, Want: "/tmp/kiln-canary-corpus/new",
			Doc:    "WorkingDir /../../../tmp/kiln-canary-corpus/new: kiln creates it inside the rootfs",
			Config: func(c *RunConfig) { c.WorkingDir = "/../../../../../.." + Canary + "/new" },
			Script: "$B pwd"},
		{Name: "config-workdir-through-link", Expect: RefusedAtRun, Want: "create working directory",
			Doc:    "WorkingDir /wd/new/deeper where /wd -> the canary: creating it must not follow the link on the host",
			Layers: []Layer{layer(symlink("wd", Canary))},
			Config: func(c *RunConfig) { c.WorkingDir = "/wd/new/deeper" }},
		{Name: "config-volumes-through-link", Expect: Contained, Want: "done",
			Doc:    "Volumes /wd/vol and /../../tmp/kiln-canary-corpus/vol where /wd -> the canary",
			Layers: []Layer{layer(symlink("wd", Canary))},
			Config: func(c *RunConfig) {
				c.Volumes = map[string]struct{}{"/wd/vol": {}, "/../../../.." + Canary + "/vol": {}}
			}},
		{Name: "config-user-canary", Expect: RefusedAtRun, Want: "kilncanary",
			Doc:    "User kilncanary, which only the canary's passwd (where /etc/passwd links) has",
			Layers: []Layer{layer(symlink("etc/passwd", Canary+"/passwd"))},
			Config: func(c *RunConfig) { c.User = "kilncanary" }},

		// Hard links.
		{Name: "hardlink-dotdot", Expect: RefusedAtRun, Want: "invalid hard link target",
			Doc:    "a hard link to ../../../../tmp/kiln-canary-corpus/passwd",
			Layers: []Layer{layer(hardlink("pw", "../../../../../../../.."+Canary+"/passwd"))}},
		{Name: "hardlink-absolute", Expect: RefusedAtRun, Want: "hard link",
			Doc:    "a hard link to /tmp/kiln-canary-corpus/passwd, then written",
			Layers: []Layer{layer(hardlink("pw", Canary+"/passwd"), reg("pw", pwned))}},
		{Name: "hardlink-via-symlink", Expect: RefusedAtRun, Want: "hard link",
			Doc:    "escape -> the canary, then a hard link to escape/passwd",
			Layers: []Layer{layer(symlink("escape", Canary), hardlink("pw", "escape/passwd"))}},
		{Name: "hardlink-across-layers", Expect: RefusedAtRun, Want: "hard link",
			Doc:    "layer 1 plants escape -> the canary, layer 2 hard-links escape/passwd",
			Layers: []Layer{layer(symlink("escape", Canary)), layer(hardlink("etc/pw", "escape/passwd"))}},
		{Name: "hardlink-to-symlink", Expect: Contained, Want: "done",
			Doc:    "s -> the canary's passwd, h hard-links the symlink s, then h is written as a file",
			Layers: []Layer{layer(symlink("s", Canary+"/passwd"), hardlink("h", "s"), reg("h", pwned), symlink("escape", Canary))}},

		// Whiteouts.
		{Name: "whiteout-dotdot", Expect: RefusedOrContained, Want: "done",
			Doc:    `whiteouts named ".wh.." and "etc/.wh.." (whiting out the parent)`,
			Layers: []Layer{layer(reg(".wh..", ""), reg("etc/.wh..", ""), reg("tmp/.wh...", ""))}},
		{Name: "whiteout-traversal", Expect: RefusedAtRun, Want: `".."`,
			Doc:    "a whiteout ../../../tmp/kiln-canary-corpus/.wh.passwd",
			Layers: []Layer{layer(reg("../../../../../../../.."+Canary+"/.wh.passwd", ""))}},
		{Name: "whiteout-absolute", Expect: Contained, Want: "done",
			Doc:    "whiteouts /tmp/kiln-canary-corpus/.wh.passwd and an opaque marker there",
			Layers: []Layer{layer(reg(Canary+"/.wh.passwd", ""), reg(Canary+"/dir/.wh..wh..opq", ""))}},
		{Name: "whiteout-via-symlink", Expect: Contained, Want: "done",
			Doc: "layer 1 plants escape -> the canary, layer 2 whites out escape/passwd and escape/dir",
			Layers: []Layer{layer(symlink("escape", Canary)),
				layer(reg("escape/.wh.passwd", ""), reg("escape/.wh.dir", ""), reg("escape/.wh.empty", ""))}},
		{Name: "opaque-via-symlink", Expect: Contained, Want: "done",
			Doc: "layer 1 plants escape -> the canary, layer 2 makes escape/ and escape/dir/ opaque",
			Layers: []Layer{layer(symlink("escape", Canary)),
				layer(reg("escape/.wh..wh..opq", ""), reg("escape/dir/.wh..wh..opq", ""))}},
		{Name: "opaque-root", Expect: Contained, Want: "done",
			Doc:    "an opaque marker at the layer root hides the base, so /etc/passwd is gone",
			Layers: []Layer{layer(reg(".wh..wh..opq", ""), dir("etc/"), reg("etc/hostname", "x\n"))}},
		{Name: "whiteout-of-whiteout", Expect: RefusedOrContained, Want: "done",
			Doc:    ".wh..wh.x, .wh..wh..opq as a directory, and a whiteout with content",
			Layers: []Layer{layer(reg("etc/.wh..wh.passwd", ""), dir("tmp/.wh..wh..opq/"), reg("etc/.wh.group", "content\n"))}},

		// Special files where kiln reads.
		{Name: "passwd-fifo", Expect: RefusedAtRun, Want: "/etc/passwd",
			Doc:      "/etc/passwd is a FIFO: a reader would block forever",
			Layers:   []Layer{layer(Entry{Name: "etc/passwd", Type: tar.TypeFifo, Mode: 0o644})},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "group-fifo", Expect: RefusedAtRun, Want: "/etc/group",
			Doc:      "/etc/group is a FIFO",
			Layers:   []Layer{layer(Entry{Name: "etc/group", Type: tar.TypeFifo, Mode: 0o644})},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "passwd-device", Expect: RefusedAtRun, Want: "/etc/passwd",
			Doc:      "/etc/passwd is /dev/zero (char 1:5): a reader would never reach the end",
			Layers:   []Layer{layer(Entry{Name: "etc/passwd", Type: tar.TypeChar, Mode: 0o644, Major: 1, Minor: 5})},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "group-device", Expect: RefusedAtRun, Want: "/etc/group",
			Doc:      "/etc/group is /dev/zero (char 1:5)",
			Layers:   []Layer{layer(Entry{Name: "etc/group", Type: tar.TypeChar, Mode: 0o644, Major: 1, Minor: 5})},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "passwd-huge", Expect: RefusedAtRun, Want: "/etc/passwd",
			Doc:      "/etc/passwd is 32 MiB of zeros (a few KB compressed)",
			Layers:   []Layer{layer(Entry{Name: "etc/passwd", Body: "root:x:0:0::/:/bin/sh\n", Zeros: 32 << 20})},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "passwd-directory", Expect: RefusedAtRun, Want: "/etc/passwd",
			Doc:      "/etc/passwd is a directory",
			Layers:   []Layer{layer(Entry{Name: "etc/.wh.passwd"}, dir("etc/passwd/"))},
			RunFlags: runAsNobody, Script: "$B echo done"},
		{Name: "device-nodes", Expect: Contained, Want: "done",
			Doc: "char devices /dev/mem (1:1) and /dev/kmsg (1:11), block device 8:0: the container must not open them",
			Layers: []Layer{layer(dir("dev/"),
				Entry{Name: "dev/evil-mem", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 1},
				Entry{Name: "dev/evil-kmsg", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 11},
				Entry{Name: "dev/evil-sda", Type: tar.TypeBlock, Mode: 0o666, Major: 8, Minor: 0},
				Entry{Name: "evil-mem", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 1})},
			Script: "for d in /dev/evil-mem /dev/evil-kmsg /dev/evil-sda /evil-mem; do $B head -c 1 $d >/dev/null 2>&1 && $B echo OPENED $d; done; $B echo done"},
		{Name: "setuid-files", Expect: Contained, Want: "done",
			Doc: "setuid/setgid root files and a world-writable setuid dir: kiln keeps them where other users cannot reach them",
			Layers: []Layer{layer(
				Entry{Name: "bin/suid", Body: "#!/bin/sh\nid\n", Mode: 0o4755},
				Entry{Name: "bin/sgid", Body: "#!/bin/sh\nid\n", Mode: 0o2755},
				Entry{Name: "bin/suid-nobody", Body: "x", Mode: 0o4777, UID: 65534},
				Entry{Name: "tmp/suid-dir/", Type: tar.TypeDir, Mode: 0o7777})},
			Script: "$B stat -c '%a %u %n' /bin/suid /bin/sgid; $B echo done"},

		// Duplicates and odd names.
		{Name: "duplicate-entries", Expect: Contained, Want: "last-wins",
			Doc: "the same path as file, dir, symlink to the canary and file again; a dir listed twice",
			Layers: []Layer{layer(reg("dup", "first\n"), dir("dup/"), reg("dup/x", "in-dir\n"), symlink("dup", Canary),
				reg("dup", "last-wins\n"), dir("d/"), reg("d/a", "a\n"), dir("d/"), symlink("escape", "dup"))},
			Script: "$B cat /dup /d/a"},
		{Name: "duplicate-layer", Expect: Contained, Want: "done",
			Doc:    "one layer listed twice in the manifest",
			Layers: []Layer{layer(reg("twice", "x\n")), layer(reg("twice", "x\n"))}},
		{Name: "bad-names", Expect: RefusedOrContained, Want: "done",
			Doc: "names: '.', './', '//', 'a//b', a/./b, a 4 KiB name (17 elements of 255 bytes), newline, non-UTF-8 (GNU)",
			Layers: []Layer{layer(dir("./"), dir("//"), reg("a//b", "x"), reg("a/./c", "x"),
				reg(strings.Repeat(strings.Repeat("n", 255)+"/", 17)+"f", "x"),
				reg("new\nline", "x"), Entry{Name: "bad\xff\xfe", Body: "x", Format: tar.FormatGNU})}},
		{Name: "empty-name", Expect: RefusedOrContained, Want: "done",
			Doc:    "an entry with an empty name and one named '..'",
			Layers: []Layer{layer(Entry{Name: "", Format: tar.FormatGNU}, Entry{Name: "..", Type: tar.TypeDir, Mode: 0o777})}},

		// Blobs that do not match what describes them.
		{Name: "layer-digest-mismatch", Expect: RefusedAtLoad, Formats: []Format{OCIArchive}, Want: "",
			Doc:    "a layer blob whose content differs from its manifest digest",
			Layers: []Layer{layer(reg("f", "x\n"))},
			Tamper: func(img *Image) { img.Layers[1].Data, _ = must2(gzipTar([]Entry{reg("f", pwned)})) }},
		{Name: "config-digest-mismatch", Expect: RefusedAtLoad, Formats: []Format{OCIArchive}, Want: "",
			Doc: "a config blob whose content differs from its manifest digest",
			Tamper: func(img *Image) {
				img.Config.Data = []byte(strings.Replace(string(img.Config.Data), "/bin/sh", "/bin/xx", 1))
			}},
		{Name: "diffid-mismatch", Expect: Refused, Want: "",
			Doc:     "the config's diff_id for the top layer names other content",
			Layers:  []Layer{layer(reg("f", "x\n"))},
			DiffIDs: func(d []string) []string { d[1] = digestOf([]byte("something else")); return d }},
		{Name: "diffid-missing", Expect: Refused, Want: "",
			Doc:     "the config lists fewer diff_ids than the manifest has layers",
			Layers:  []Layer{layer(reg("f", "x\n"))},
			DiffIDs: func(d []string) []string { return d[:1] }},
		{Name: "size-mismatch", Expect: RefusedAtLoad, Formats: []Format{OCIArchive}, Want: "",
			Doc:    "a layer descriptor whose size is smaller than the blob",
			Layers: []Layer{layer(reg("f", "x\n"))},
			Tamper: func(img *Image) { img.Layers[1].Size -= 10 }},
		{Name: "truncated-blob", Expect: RefusedAtLoad, Want: "",
			Doc:    "a layer blob cut in half (the manifest still describes the whole)",
			Layers: []Layer{layer(Entry{Name: "big", Body: strings.Repeat("kiln corpus ", 4000)})},
			Tamper: func(img *Image) { img.Layers[1].Data = img.Layers[1].Data[:len(img.Layers[1].Data)/2] }},
		{Name: "truncated-gzip-consistent", Expect: Refused, Want: "",
			Doc:    "a gzip layer cut in half whose manifest digest and size match the cut blob (only the diff_id can tell)",
			Layers: []Layer{layer(Entry{Name: "big", Body: strings.Repeat("kiln corpus ", 4000)})},
			Tamper: func(img *Image) {
				l := &img.Layers[1]
				l.Data = l.Data[:len(l.Data)/2]
				l.Digest, l.Size = digestOf(l.Data), int64(len(l.Data))
			}},
		{Name: "not-gzip", Expect: Refused, Want: "",
			Doc:    "a layer typed tar+gzip whose bytes are random, digest consistent",
			Layers: []Layer{layer(reg("f", "x\n"))},
			Tamper: func(img *Image) {
				l := &img.Layers[1]
				l.Data = []byte(strings.Repeat("\x1f\x8b\x08\x00garbage", 64))
				l.Digest, l.Size = digestOf(l.Data), int64(len(l.Data))
			}},

		// Bombs.
		{Name: "decompression-bomb", Expect: RefusedAtRun, Want: "KILN_LAYER_MAX_SIZE",
			Doc:    "a gzip layer of 128 KiB that inflates to 128 MiB of zeros, refused under KILN_LAYER_MAX_SIZE=64m",
			Layers: []Layer{layer(Entry{Name: "bomb", Zeros: 128 << 20})},
			Script: "$B echo done", Env: []string{"KILN_LAYER_MAX_SIZE=64m"}},
	}
}

func must2[T, U any](t T, u U, err error) (T, U) {
	if err != nil {
		panic(err)
	}
	return t, u
}
