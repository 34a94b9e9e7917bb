//! The simulator: a discrete-event replay of CI traces against a simulated forge queue and
//! Auto Scaling Group, driving the real planner and the real agent idle logic.
