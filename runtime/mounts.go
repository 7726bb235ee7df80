package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maskedPaths are docker's: kernel interfaces that leak host data or offer attack surface.
var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// readonlyPaths are docker's: kernel knobs a container may read but never write.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// systemDirs are where the runtime mounts procfs, the /dev tmpfs and sysfs.
var systemDirs = []string{"dev", "proc", "sys"}

// checkSystemDirs refuses a rootfs whose /dev, /proc or /sys is a symlink: runc before 1.3.6
// set up /dev (device nodes, ptmx, the fd links) through such a link on the host
// (CVE-2026-41579), and no working image needs one.
func checkSystemDirs(rootfs string) error {
	for _, d := range systemDirs {
		fi, err := os.Lstat(filepath.Join(rootfs, d))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		target, _ := os.Readlink(filepath.Join(rootfs, d))
		return fmt.Errorf("the image's /%s is a symlink (to %s), which the runtime would follow on the host: make /%s a directory in the image", d, target, d)
	}
	return nil
}

// defaultMounts are docker's standard filesystems in every container.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// userMounts converts the Spec's mounts, checking sources and creating targets inside rootfs
// without following symlinks out of it (the runtime would otherwise resolve them on the host).
func userMounts(rootfs string, ms []Mount) ([]specs.Mount, error) {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		if !path.IsAbs(m.Target) {
			return nil, fmt.Errorf("mount target %q: must be an absolute path", m.Target)
		}
		target := path.Clean(m.Target)
		var om specs.Mount
		switch m.Type {
		case Bind:
			fi, err := os.Stat(m.Source)
			if err != nil {
				return nil, fmt.Errorf("bind mount source %s: %w (create it first or fix the path)", m.Source, err)
			}
			if err := makeTarget(rootfs, target, fi.IsDir()); err != nil {
				return nil, err
			}
			om = specs.Mount{Destination: target, Type: "bind", Source: m.Source, Options: []string{"rbind", "rprivate"}}
		case Tmpfs:
			if err := makeTarget(rootfs, target, true); err != nil {
				return nil, err
			}
			om = specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}}
		default:
			return nil, fmt.Errorf("mount %s: unknown mount type %d", m.Target, m.Type)
		}
		if m.ReadOnly {
			om.Options = append(om.Options, "ro")
		}
		om.Options = append(om.Options, m.Options...)
		out = append(out, om)
	}
	return out, nil
}

// makeTarget creates a mount point (directory or empty file) confined to rootfs. As docker, the
// target is first resolved inside rootfs, following the image's symlinks without leaving it, so a
// VOLUME through a link that dangles (its place does not exist yet) is made where the link leads,
// inside the container.
func makeTarget(rootfs, target string, dir bool) error {
	if resolved, err := securejoin.SecureJoin(rootfs, target); err == nil {
		if rel, err := filepath.Rel(rootfs, resolved); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			target = path.Join("/", filepath.ToSlash(rel))
		}
	}
	if dir {
		if err := pathrs.MkdirAll(rootfs, target, 0o755); err != nil {
			return fmt.Errorf("create mount point %s in rootfs: %w", target, inRootfs{rootfs, err})
		}
		return nil
	}
	if f, err := pathrs.OpenInRoot(rootfs, target); err == nil {
		return f.Close()
	}
	parent := path.Dir(target)
	if err := pathrs.MkdirAll(rootfs, parent, 0o755); err != nil {
		return fmt.Errorf("create mount point %s in rootfs: %w", parent, inRootfs{rootfs, err})
	}
	d, err := pathrs.OpenInRoot(rootfs, parent)
	if err != nil {
		return fmt.Errorf("open %s in rootfs: %w", parent, err)
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), filepath.Base(target), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create mount point %s in rootfs: %w", target, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return nil
}
