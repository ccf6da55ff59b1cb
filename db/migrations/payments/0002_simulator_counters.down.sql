DROP TABLE IF EXISTS payments.simulator_counters;
