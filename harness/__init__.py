"""notifychaos: rehearse notification failures and score reminder continuity.

The pipeline: a scenario file (`harness.scenario`) drives a run (`harness.run`) that brings up
the topology, plays the fault timeline and the load, and writes a journal (`harness.journal`);
the scorer (`harness.continuity`) turns the journal into a scorecard, judged by the gates.
"""
