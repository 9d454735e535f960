package ctl

import (
	"context"
	"fmt"
)

// apply makes the control plane match a file: `apply -f FILE [--dry-run] [--prune]`.
func (c *cli) apply(ctx context.Context, args []string) error {
	fs := c.flags("apply")
	file := fs.String("f", "", "YAML file to apply, - for standard input")
	dry := fs.Bool("dry-run", false, "print the plan without changing anything")
	prune := fs.Bool("prune", false, "delete resources the file does not name")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *file == "" {
		return usagef("apply: -f FILE is required")
	}
	data, err := c.readInput(*file)
	if err != nil {
		return err
	}
	label := *file
	if label == "-" {
		label = "standard input"
	}
	spec, err := c.decoder().DecodeSpec(data)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	state, err := a.readState(ctx)
	if err != nil {
		return err
	}
	plan, err := MakePlan(spec, state, *prune)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if *dry || len(plan) == 0 {
		plan.Print(c.stdout)
		if *dry && len(plan) > 0 {
			fmt.Fprintln(c.stdout, "dry run: nothing was changed")
		}
		return nil
	}
	if err := a.execute(ctx, plan, state, c.stdout); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "applied %d change(s)\n", len(plan))
	return nil
}

// export prints the configuration as an apply file.
func (c *cli) export(ctx context.Context, args []string) error {
	fs := c.flags("export")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	state, err := a.readState(ctx)
	if err != nil {
		return err
	}
	out, err := Export(state)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out)
	return err
}
