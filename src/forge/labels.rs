//! Label rules: whether a pool's agents could take a job, per forge, as pure functions
//! over plain strings (DESIGN.md, "Labels").
