package container

import (
	"context"
	"fmt"
)

// Rename gives c the name name, which no other container may have (docker's `rename`).
func (s *Store) Rename(ctx context.Context, c *Container, name string) error {
	if !validName(name) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.List()
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == name && o.ID != c.ID {
			return &NameConflictError{Name: name, ID: o.ID}
		}
	}
	cur, err := s.load(c.ID)
	if err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	for i, n := range cur.Spec.DNSNames {
		if n == cur.Name {
			cur.Spec.DNSNames[i] = name // its network's members know the new name from its next start
		}
	}
	cur.Name = name
	if err := writeRecord(cur.dir, cur.Config); err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	c.Name = name
	return nil
}
