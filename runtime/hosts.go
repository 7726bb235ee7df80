package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// hostsTag ends every line kiln keeps in a member's /etc/hosts, so a rewrite replaces its own
// lines and keeps whatever else the file holds (--add-host lines, the container's own edits).
const hostsTag = "# kiln network member"

// maxHosts bounds how much of a container's /etc/hosts a rewrite reads: the container may
// write to its own file, and kiln must not read gigabytes for it.
const maxHosts = 1 << 20

// joinHosts lists container s in the /etc/hosts of the other members of its bridge and them in
// its own, once its own file is written (WriteConfig): from then on every join and leave of a
// member rewrites them all under the network lock, so earlier members see later ones too.
func joinHosts(ctx context.Context, s Spec) error {
	l, err := lockNet(ctx, s.stateDir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return syncHosts(s.stateDir)
}

// syncHosts rewrites the member lines of every /etc/hosts kept for name resolution, each bridge's
// members listing the others; the caller holds the network lock. A member whose file is gone
// (its container removed) is skipped.
func syncHosts(stateDir string) error {
	records, err := readNetRecords(stateDir)
	if err != nil {
		return err
	}
	records = slices.DeleteFunc(records, func(r netRecord) bool { return r.Hosts == "" || !r.IP.IsValid() })
	slices.SortFunc(records, func(a, b netRecord) int { return a.IP.Compare(b.IP) })
	var errs []error
	for _, self := range records {
		var lines strings.Builder
		for _, m := range records {
			if m.Bridge == self.Bridge && m.ID != self.ID && len(m.Names) > 0 {
				fmt.Fprintf(&lines, "%s\t%s\t%s\n", m.IP, strings.Join(m.Names, " "), hostsTag)
			}
		}
		errs = append(errs, rewriteHosts(self.Hosts, lines.String()))
	}
	return errors.Join(errs...)
}

// rewriteHosts replaces kiln's member lines of the hosts file at name with lines, in place: the
// file is bind-mounted into a running container, where a renamed file would not show. The
// new content is written before the file is cut to its length, so it is never seen empty.
func rewriteHosts(name, lines string) error {
	f, err := os.OpenFile(name, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update container hosts file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHosts))
	if err != nil {
		return fmt.Errorf("read container hosts file %s: %w", name, err)
	}
	var out strings.Builder
	for line := range strings.Lines(string(data)) {
		if !strings.HasSuffix(strings.TrimRight(line, "\n"), hostsTag) {
			out.WriteString(line)
		}
	}
	if out.Len() > 0 && !strings.HasSuffix(out.String(), "\n") {
		out.WriteByte('\n')
	}
	out.WriteString(lines)
	if out.String() == string(data) {
		return nil
	}
	if _, err := f.WriteAt([]byte(out.String()), 0); err != nil {
		return fmt.Errorf("write container hosts file %s: %w", name, err)
	}
	if err := f.Truncate(int64(out.Len())); err != nil {
		return fmt.Errorf("write container hosts file %s: %w", name, err)
	}
	return nil
}
