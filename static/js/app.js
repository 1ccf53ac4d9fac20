/* placeholder, replaced by the front-end engineer */
