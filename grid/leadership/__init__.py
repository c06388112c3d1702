"""The county's leadership mechanisms beside the grid and the mediation tiers: departments,
case ownership by a leader (包案), reception duty (坐班接访), joint meetings and supervised
tasks (联席会议、督办), backlog batches (积案), social-assistance referrals (社会救助) and
the township hall's team (五位一体). docs/leadership.md describes them."""
