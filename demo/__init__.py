"""The demo room: the data generator and its planted personas, the demo tenant `acme` and
the commands that seed it (`generate_demo`, `seed_demo`, `dev_up`). It may import every app;
no app imports it (import-linter's `demo` contract), so none of this ships as product logic."""
