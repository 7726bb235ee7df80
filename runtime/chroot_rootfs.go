package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// ChrootFiles are what PrepareChroot put into a tree: in other rungs they are mounts (the /dev
// tmpfs, the /etc files), so they never belong to a layer, and Restore takes them out again.
type ChrootFiles struct {
	// Paths are the entries placed, relative to the rootfs with slashes, and the names the
	// originals wait under: a layer diff skips them.
	Paths []string
	undo  []func() error // in the order to run them
	root  *os.Root       // the rootfs, open until Restore
	Notes []string       // what could not be placed, and why (also in the Runtime's debug notes)
}

// chrootDevices are the device nodes docker gives every container (major, minor).
var chrootDevices = []struct {
	name         string
	major, minor uint32
}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}

// PrepareChroot places into rootfs, for a chroot-rung run, the device nodes a container gets in
// its /dev and the host's /etc/hosts, /etc/resolv.conf and /etc/hostname (the chroot shares
// the host's network and hostname). An entry the image has is kept aside under a hidden name and
// put back by Restore. Every path stays inside rootfs; a /dev or /etc that is not a plain
// directory gets nothing. A device node needs CAP_MKNOD: without it there is a note instead.
func (rt *Runtime) PrepareChroot(rootfs string) (*ChrootFiles, error) {
	cf, err := prepareChroot(rootfs)
	if cf != nil {
		for _, n := range cf.Notes {
			fmt.Fprintf(rt.debug, "chroot: %s\n", n)
		}
	}
	return cf, err
}

func prepareChroot(rootfs string) (*ChrootFiles, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("prepare chroot rootfs: %w", err)
	}
	cf := &ChrootFiles{root: root}
	fail := func(err error) (*ChrootFiles, error) {
		return nil, errors.Join(fmt.Errorf("prepare chroot rootfs: %w", err), cf.Restore())
	}
	hostname, _ := os.Hostname()
	etc := []struct {
		name string
		data []byte
	}{{"hosts", nil}, {"resolv.conf", nil}, {"hostname", []byte(hostname + "\n")}}
	for i := range etc[:2] {
		if etc[i].data, err = hostEtcFile("/etc/" + etc[i].name); err != nil {
			return fail(err)
		}
	}
	if ok, err := cf.plainDir(root, "etc"); err != nil {
		return fail(err)
	} else if ok {
		for _, f := range etc {
			if f.data == nil {
				continue
			}
			if err := cf.place(root, "etc/"+f.name, func(name string) error {
				return root.WriteFile(name, f.data, 0o644)
			}); err != nil {
				return fail(err)
			}
		}
	}
	if ok, err := cf.plainDir(root, "dev"); err != nil {
		return fail(err)
	} else if ok {
		for _, d := range chrootDevices {
			err := cf.place(root, "dev/"+d.name, func(name string) error { return mknodIn(root, name, d.major, d.minor) })
			if errors.Is(err, unix.EPERM) {
				cf.Notes = append(cf.Notes, fmt.Sprintf("no /dev/%s in the chroot: creating device nodes needs CAP_MKNOD", d.name))
				continue
			}
			if err != nil {
				return fail(err)
			}
		}
	}
	return cf, nil
}

// plainDir makes dir if missing (removed again by Restore when left empty) and reports whether
// it is a real directory, which the files may go into.
func (cf *ChrootFiles) plainDir(root *os.Root, dir string) (bool, error) {
	fi, err := root.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := root.Mkdir(dir, 0o755); err != nil {
			return false, err
		}
		cf.undo = append(cf.undo, func() error {
			if err := root.Remove(dir); err != nil && !isNotEmpty(err) && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		})
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// place creates name with create, keeping an existing entry aside under a hidden name.
func (cf *ChrootFiles) place(root *os.Root, name string, create func(string) error) error {
	dir, base := path.Split(name)
	aside := dir + ".kiln-chroot-" + base
	_, err := root.Lstat(name)
	kept := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if kept {
		if err := root.Rename(name, aside); err != nil {
			return err
		}
	}
	restore := func() error {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
		if kept {
			return root.Rename(aside, name)
		}
		return nil
	}
	if err := create(name); err != nil {
		return errors.Join(err, restore())
	}
	cf.Paths = append(cf.Paths, name)
	if kept {
		cf.Paths = append(cf.Paths, aside)
	}
	// Undone in reverse: a file's own restore before its dir's removal.
	cf.undo = append([]func() error{restore}, cf.undo...)
	return nil
}

// mknodIn makes a character device of mode 0666 at name inside root.
func mknodIn(root *os.Root, name string, major, minor uint32) error {
	dir, base := path.Split(name)
	d, err := root.Open(path.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Mknodat(int(d.Fd()), base, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
		return err
	}
	return unix.Fchmodat(int(d.Fd()), base, 0o666, 0) // the umask trimmed mknod's mode
}

// Restore takes out what PrepareChroot placed and puts the image's own entries back.
func (cf *ChrootFiles) Restore() error {
	var errs []error
	for _, u := range cf.undo {
		errs = append(errs, u())
	}
	cf.undo = nil
	if cf.root != nil {
		errs = append(errs, cf.root.Close())
		cf.root = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restore chroot rootfs: %w", err)
	}
	return nil
}
