// Package scheduler starts blueprints on a schedule from schedules.toml:
// fixed intervals, cron expressions, and the seed's daily/weekly/monthly
// forms, in a time zone. Several orchestrators may run it on one store: a
// claim per schedule and tick makes each tick start exactly one job.
package scheduler

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/robfig/cron/v3"
)

// Schedule is one entry of schedules.toml.
type Schedule struct {
	Name        string
	Blueprint   string
	InitialData map[string]any
	Interval    time.Duration // interval schedules: ticks at multiples of it
	Spec        string        // the cron form of calendar schedules, for display
	Location    *time.Location
	cron        cron.Schedule
}

// Next returns the first tick strictly after t.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Interval > 0 {
		n := t.UnixNano()/int64(s.Interval) + 1
		return time.Unix(0, n*int64(s.Interval)).In(s.Location)
	}
	return s.cron.Next(t.In(s.Location))
}

// tickOf returns the tick at or before t (interval schedules only).
func (s Schedule) tickOf(t time.Time) time.Time {
	return time.Unix(0, t.UnixNano()/int64(s.Interval)*int64(s.Interval)).In(s.Location)
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Load reads schedules.toml: one table per schedule with blueprint
// (required), initial_data (or input_data), enabled (default true),
// timezone (default UTC) and one timing: interval_seconds, cron (five
// fields or a descriptor such as @hourly), daily_at = "HH:MM", or time =
// "HH:MM" with weekly_days = ["mon", ...] and/or monthly_dates = [1, 15].
// It returns the valid schedules and one error per bad entry, by name, so
// that a bad entry does not stop the others. knows reports whether a
// blueprint exists (nil accepts any).
func Load(path string, knows func(string) bool) ([]Schedule, []error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("read %s: %w", path, err)}
	}
	var top map[string]any
	if _, err := toml.Decode(string(data), &top); err != nil {
		return nil, []error{fmt.Errorf("parse %s: %w", path, err)}
	}
	names := make([]string, 0, len(top))
	for n := range top {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Schedule
	var errs []error
	for _, name := range names {
		t, ok := top[name].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: schedule %q must be a table", path, name))
			continue
		}
		s, enabled, err := parseEntry(name, t, knows)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: schedule %q: %w", path, name, err))
			continue
		}
		if enabled {
			out = append(out, s)
		}
	}
	return out, errs
}

func parseEntry(name string, t map[string]any, knows func(string) bool) (Schedule, bool, error) {
	s := Schedule{Name: name, Location: time.UTC, InitialData: map[string]any{}}
	bp, ok := t["blueprint"].(string)
	if !ok || bp == "" {
		return s, false, errors.New("blueprint must be a non-empty string")
	}
	if knows != nil && !knows(bp) {
		return s, false, fmt.Errorf("unknown blueprint %q", bp)
	}
	s.Blueprint = bp
	enabled := true
	if v, ok := t["enabled"]; ok {
		if enabled, ok = v.(bool); !ok {
			return s, false, errors.New("enabled must be true or false")
		}
	}
	for _, key := range []string{"initial_data", "input_data"} {
		if v, ok := t[key]; ok {
			m, ok := v.(map[string]any)
			if !ok {
				return s, false, fmt.Errorf("%s must be a table", key)
			}
			s.InitialData = m
		}
	}
	if v, ok := t["timezone"]; ok {
		tz, ok := v.(string)
		loc, err := time.LoadLocation(tz)
		if !ok || err != nil {
			return s, false, fmt.Errorf("unknown timezone %v", v)
		}
		s.Location = loc
	}
	spec, err := timing(t)
	if err != nil {
		return s, false, err
	}
	if iv, ok := t["interval_seconds"]; ok {
		n, ok := iv.(int64)
		if !ok || n <= 0 {
			return s, false, errors.New("interval_seconds must be a positive integer")
		}
		s.Interval = time.Duration(n) * time.Second
		s.Spec = fmt.Sprintf("every %ds", n)
		return s, enabled, nil
	}
	sched, err := parser.Parse(spec)
	if err != nil {
		return s, false, fmt.Errorf("bad schedule %q: %w", spec, err)
	}
	s.cron, s.Spec = sched, spec
	return s, enabled, nil
}

// timing checks that exactly one timing is given and returns calendar forms
// as a cron spec.
func timing(t map[string]any) (string, error) {
	var forms []string
	for _, k := range []string{"interval_seconds", "cron", "daily_at", "weekly_days", "monthly_dates"} {
		if _, ok := t[k]; ok {
			forms = append(forms, k)
		}
	}
	weeklyMonthly := slices.Contains(forms, "weekly_days") || slices.Contains(forms, "monthly_dates")
	switch {
	case len(forms) == 0:
		return "", errors.New("no timing: set interval_seconds, cron, daily_at, or time with weekly_days/monthly_dates")
	case len(forms) > 1 && !(len(forms) == 2 && slices.Contains(forms, "weekly_days") && slices.Contains(forms, "monthly_dates")):
		return "", fmt.Errorf("more than one timing: %s", strings.Join(forms, ", "))
	}
	if c, ok := t["cron"]; ok {
		spec, ok := c.(string)
		if !ok {
			return "", errors.New("cron must be a string")
		}
		return spec, nil
	}
	if d, ok := t["daily_at"]; ok {
		h, m, err := clock(d)
		if err != nil {
			return "", fmt.Errorf("daily_at: %w", err)
		}
		return fmt.Sprintf("%d %d * * *", m, h), nil
	}
	if !weeklyMonthly {
		return "", nil // interval
	}
	h, m, err := clock(t["time"])
	if err != nil {
		return "", fmt.Errorf("time: %w", err)
	}
	dom, dow := "*", "*"
	if v, ok := t["weekly_days"]; ok {
		days, err := list(v, func(x any) (string, error) {
			s, ok := x.(string)
			if !ok || !slices.Contains([]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}, strings.ToLower(s)) {
				return "", fmt.Errorf("weekly_days: %v is not a day (mon..sun)", x)
			}
			return strings.ToLower(s), nil
		})
		if err != nil {
			return "", err
		}
		dow = days
	}
	if v, ok := t["monthly_dates"]; ok {
		dates, err := list(v, func(x any) (string, error) {
			n, ok := x.(int64)
			if !ok || n < 1 || n > 31 {
				return "", fmt.Errorf("monthly_dates: %v is not a day of the month", x)
			}
			return strconv.FormatInt(n, 10), nil
		})
		if err != nil {
			return "", err
		}
		dom = dates
	}
	return fmt.Sprintf("%d %d %s * %s", m, h, dom, dow), nil
}

func clock(v any) (hour, minute int, err error) {
	s, ok := v.(string)
	if !ok {
		return 0, 0, errors.New(`want "HH:MM"`)
	}
	tm, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, fmt.Errorf(`want "HH:MM", got %q`, s)
	}
	return tm.Hour(), tm.Minute(), nil
}

func list(v any, item func(any) (string, error)) (string, error) {
	xs, ok := v.([]any)
	if !ok || len(xs) == 0 {
		return "", errors.New("want a non-empty list")
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		s, err := item(x)
		if err != nil {
			return "", err
		}
		out[i] = s
	}
	return strings.Join(out, ","), nil
}
