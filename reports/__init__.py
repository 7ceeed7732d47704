"""Reports: the A/B stats engine, the T+1 daily report and the experiment report, with their HTML pages."""
