import { run, show } from "../../shared/app.js";

show(run());
